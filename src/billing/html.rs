//! The printable HTML view of an invoice: the `invoice` field of the GraphQL schema (as the REST
//! route `GET /api/v1/billing/invoices/{id}/html` selects it) rendered with the templates of the
//! server's other pages. It reads only what the JSON view shows, so the two cannot disagree.

use askama::Template;
use serde_json::Value;

struct Line {
    description: String,
    period: String,
    quantity: String,
    unit_price: String,
    amount: String,
}

struct PaymentRow {
    id: String,
    date: String,
    status: String,
    amount: String,
}

#[derive(Template)]
#[template(path = "billing/invoice.html")]
struct InvoicePage {
    id: String,
    number: String,
    status: String,
    status_class: String,
    period: String,
    issued: String,
    due: String,
    paid: Option<String>,
    currency: String,
    lines: Vec<Line>,
    total: String,
    amount_paid: String,
    amount_due: String,
    payments: Vec<PaymentRow>,
}

/// `1234567` → `1,234,567`.
fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An amount in minor units: `-123456` → `-1,234.56`.
pub fn minor(amount: i64) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs() as u128;
    format!("{sign}{}.{:02}", grouped(a / 100), a % 100)
}

/// A unit price in micro-units (millionths of the currency unit), with at least two decimals and
/// at most six: `100` → `0.0001`, `9_900_000` → `9.90`.
pub fn micros(price: i64) -> String {
    let sign = if price < 0 { "-" } else { "" };
    let p = price.unsigned_abs() as u128;
    let mut frac = format!("{:06}", p % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", grouped(p / 1_000_000))
}

fn date(v: &Value) -> String {
    v.as_str().map(|s| s.get(..10).unwrap_or(s).to_string()).unwrap_or_else(|| "—".into())
}

fn money(v: &Value) -> String {
    minor(v["amount"].as_i64().unwrap_or(0))
}

/// Renders the invoice (the GraphQL `Invoice` object as JSON, camelCase keys).
pub fn render(inv: &Value) -> Result<String, askama::Error> {
    let status = inv["status"].as_str().unwrap_or("").to_ascii_lowercase();
    let lines = inv["lines"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| Line {
                    description: l["description"].as_str().unwrap_or("").into(),
                    period: format!("{} – {}", date(&l["periodStart"]), date(&l["periodEnd"])),
                    quantity: grouped(l["quantity"].as_i64().unwrap_or(0).max(0) as u128),
                    unit_price: micros(l["unitPriceMicros"].as_i64().unwrap_or(0)),
                    amount: money(&l["amount"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let payments = inv["payments"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| PaymentRow {
                    id: p["id"].as_str().unwrap_or("").into(),
                    date: date(&p["createdAt"]),
                    status: p["status"].as_str().unwrap_or("").to_ascii_lowercase(),
                    amount: money(&p["amount"]),
                })
                .collect()
        })
        .unwrap_or_default();
    InvoicePage {
        id: inv["id"].as_str().unwrap_or("").into(),
        number: inv["number"].as_str().unwrap_or("(draft)").into(),
        status_class: status.clone(),
        status,
        period: format!("{} – {}", date(&inv["periodStart"]), date(&inv["periodEnd"])),
        issued: date(if inv["finalizedAt"].is_null() { &inv["createdAt"] } else { &inv["finalizedAt"] }),
        due: date(&inv["dueAt"]),
        paid: inv["paidAt"].as_str().map(|_| date(&inv["paidAt"])),
        currency: inv["currency"].as_str().unwrap_or("").into(),
        lines,
        total: money(&inv["total"]),
        amount_paid: money(&inv["amountPaid"]),
        amount_due: money(&inv["amountDue"]),
        payments,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_printed_exactly() {
        assert_eq!(minor(0), "0.00");
        assert_eq!(minor(5), "0.05");
        assert_eq!(minor(123_456_789), "1,234,567.89");
        assert_eq!(minor(-4_950), "-49.50");
        assert_eq!(micros(100), "0.0001");
        assert_eq!(micros(9_900_000), "9.90");
        assert_eq!(micros(1_234_567_891), "1,234.567891");
        assert_eq!(micros(0), "0.00");
    }

    #[test]
    fn text_is_escaped() {
        let inv = serde_json::json!({
            "id": "inv_1", "number": "GAN-000001", "status": "PAID", "currency": "USD",
            "periodStart": "2027-03-01T00:00:00Z", "periodEnd": "2027-04-01T00:00:00Z",
            "total": {"amount": 4900}, "amountPaid": {"amount": 4900}, "amountDue": {"amount": 0},
            "lines": [{"description": "<script>x</script>", "quantity": 1, "unitPriceMicros": 49_000_000,
                       "amount": {"amount": 4900}, "periodStart": "2027-03-01T00:00:00Z", "periodEnd": "2027-04-01T00:00:00Z"}],
            "payments": [],
        });
        let html = render(&inv).unwrap();
        assert!(html.contains("&#60;script&#62;x&#60;/script&#62;") && !html.contains("<script>"), "{html}");
        assert!(html.contains("Invoice GAN-000001") && html.contains("49.00") && html.contains("2027-03-01"));
    }
}
