//! The payment-provider interface and the built-in test provider.
//!
//! A provider holds the card; Gantry keeps only what a card is shown by (brand, last four digits,
//! expiry) and the provider's reference for charging it. Charges carry an idempotency key: the
//! same key returns the first outcome without charging again, so a charge retried after a crash
//! is charged once.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

/// A card as the caller typed it. Never stored, never logged (`Debug` masks it).
pub struct CardInput {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits: String = self.number.chars().filter(char::is_ascii_digit).collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        write!(f, "CardInput(•••• {last4}, {:02}/{})", self.exp_month, self.exp_year)
    }
}

/// What is stored of an attached card.
#[derive(Debug, Clone)]
pub struct AttachedCard {
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub provider_ref: String,
}

/// A refusal to attach a card: the input field and why.
#[derive(Debug, Clone)]
pub struct CardRefused {
    pub field: &'static str,
    pub message: String,
}

/// The outcome of one charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        charge_ref: String,
    },
    /// Declined with a Stripe-style code (`card_declined`, `insufficient_funds`, `expired_card`).
    Failed {
        code: String,
    },
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Validates and attaches a card. `today` is (year, month) by the server's clock.
    async fn attach(&self, card: &CardInput, today: (i64, i64)) -> Result<AttachedCard, CardRefused>;
    /// Forgets a card.
    async fn detach(&self, provider_ref: &str);
    /// Charges `amount_cents`; the same `idempotency_key` always returns the first outcome.
    async fn charge(
        &self,
        provider_ref: &str,
        amount_cents: i64,
        currency: &str,
        idempotency_key: &str,
    ) -> ChargeOutcome;
    /// Refunds a charge (whole).
    async fn refund(&self, charge_ref: &str);
}

/// Behaves like Stripe's test cards: any Luhn-valid number attaches; `4000 0000 0000 0002` is
/// declined, `4000 0000 0000 9995` fails for insufficient funds, every other card succeeds.
#[derive(Default)]
pub struct TestProvider {
    charges: Mutex<HashMap<String, ChargeOutcome>>,
    refunded: Mutex<Vec<String>>,
}

impl TestProvider {
    /// Charges refunded so far (tests read it).
    pub fn refunded(&self) -> Vec<String> {
        self.refunded.lock().clone()
    }
}

/// Whether a digit string passes the Luhn check.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, ch) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(ch - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The card network of a number, by its leading digits.
pub fn brand(digits: &str) -> &'static str {
    let two: u32 = digits.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let four: u32 = digits.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    match () {
        _ if digits.starts_with('4') => "visa",
        _ if (51..=55).contains(&two) || (2221..=2720).contains(&four) => "mastercard",
        _ if two == 34 || two == 37 => "amex",
        _ if digits.starts_with("6011") || digits.starts_with("65") => "discover",
        _ => "unknown",
    }
}

/// Checks a card's fields; returns its digits.
pub fn check_card(card: &CardInput, (year, month): (i64, i64)) -> Result<String, CardRefused> {
    let refuse = |field, message: &str| CardRefused { field, message: message.to_string() };
    if card.number.chars().any(|c| !(c.is_ascii_digit() || c == ' ' || c == '-')) {
        return Err(refuse("number", "only digits, spaces and dashes"));
    }
    let digits: String = card.number.chars().filter(char::is_ascii_digit).collect();
    if !(12..=19).contains(&digits.len()) {
        return Err(refuse("number", "a card number has 12 to 19 digits"));
    }
    if !luhn(&digits) {
        return Err(refuse("number", "not a valid card number (checksum)"));
    }
    if !(1..=12).contains(&card.exp_month) {
        return Err(refuse("expMonth", "a month from 1 to 12"));
    }
    if !(2000..=2100).contains(&card.exp_year) {
        return Err(refuse("expYear", "a four-digit year"));
    }
    if (card.exp_year, card.exp_month) < (year, month) {
        return Err(refuse("expYear", "the card has expired"));
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse("cvc", "3 or 4 digits"));
    }
    Ok(digits)
}

#[async_trait]
impl PaymentProvider for TestProvider {
    async fn attach(&self, card: &CardInput, today: (i64, i64)) -> Result<AttachedCard, CardRefused> {
        let digits = check_card(card, today)?;
        let outcome = match digits.as_str() {
            "4000000000000002" => "declined",
            "4000000000009995" => "insufficientfunds",
            _ => "ok",
        };
        let nonce: u64 = rand::random();
        Ok(AttachedCard {
            brand: brand(&digits).to_string(),
            last4: digits[digits.len() - 4..].to_string(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            provider_ref: format!("tpm_{outcome}_{nonce:016x}"),
        })
    }

    async fn detach(&self, _provider_ref: &str) {}

    async fn charge(
        &self,
        provider_ref: &str,
        _amount_cents: i64,
        _currency: &str,
        idempotency_key: &str,
    ) -> ChargeOutcome {
        let mut charges = self.charges.lock();
        charges
            .entry(idempotency_key.to_string())
            .or_insert_with(|| match provider_ref.split('_').nth(1) {
                Some("ok") => ChargeOutcome::Succeeded { charge_ref: format!("tch_{:016x}", rand::random::<u64>()) },
                Some("insufficientfunds") => ChargeOutcome::Failed { code: "insufficient_funds".into() },
                _ => ChargeOutcome::Failed { code: "card_declined".into() },
            })
            .clone()
    }

    async fn refund(&self, charge_ref: &str) {
        self.refunded.lock().push(charge_ref.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: &str) -> CardInput {
        CardInput { number: n.into(), exp_month: 12, exp_year: 2030, cvc: "123".into() }
    }

    #[tokio::test]
    async fn test_cards_behave_like_stripes() {
        let p = TestProvider::default();
        let today = (2026, 12);
        let ok = p.attach(&card("4242 4242 4242 4242"), today).await.unwrap();
        assert_eq!((ok.brand.as_str(), ok.last4.as_str()), ("visa", "4242"));
        assert!(!ok.provider_ref.contains("4242424242424242"));
        let declined = p.attach(&card("4000000000000002"), today).await.unwrap();
        let poor = p.attach(&card("4000-0000-0000-9995"), today).await.unwrap();
        assert!(matches!(p.charge(&ok.provider_ref, 100, "USD", "a").await, ChargeOutcome::Succeeded { .. }));
        assert_eq!(
            p.charge(&declined.provider_ref, 100, "USD", "b").await,
            ChargeOutcome::Failed { code: "card_declined".into() }
        );
        assert_eq!(
            p.charge(&poor.provider_ref, 100, "USD", "c").await,
            ChargeOutcome::Failed { code: "insufficient_funds".into() }
        );
        // The same key is the same charge.
        assert_eq!(
            p.charge(&ok.provider_ref, 100, "USD", "a").await,
            p.charge(&ok.provider_ref, 100, "USD", "a").await
        );
        assert_eq!(p.attach(&card("4242424242424241"), today).await.unwrap_err().field, "number");
        let expired = CardInput { exp_year: 2026, exp_month: 11, ..card("4242424242424242") };
        assert_eq!(p.attach(&expired, today).await.unwrap_err().field, "expYear");
        assert_eq!(
            p.attach(&CardInput { cvc: "12".into(), ..card("4242424242424242") }, today).await.unwrap_err().field,
            "cvc"
        );
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(format!("{:?}", card("4242424242424242")), "CardInput(•••• 4242, 12/2030)");
    }
}
