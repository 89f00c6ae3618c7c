import { useEffect, useState } from 'react';
import { gql, restText } from '../api.js';
import { useAction, useQuery } from '../hooks.js';
import {
  Card, Empty, ErrorBox, Field, Link, Loading, Modal, Page, QueryState, Status, Unavailable, date, day, formValues, money, num,
} from '../ui.jsx';

const MONEY = 'amount currency';
const LINE = `kind description periodStart periodEnd quantity unitPriceMicros amount { ${MONEY} } plan { name } appId`;
const INVOICE_ROW = `id number status kind total { ${MONEY} } amountDue { ${MONEY} } periodStart periodEnd createdAt paidAt dueAt`;

const QUERY = `query Billing {
  subscription { id status billingCycle currentPeriodStart currentPeriodEnd nextBillingDate autoRenew cancelAtPeriodEnd
    canceledAt spendCap { ${MONEY} } plan { id slug name monthlyPrice { ${MONEY} } annualPrice { ${MONEY} } quotaMode monthlyQuota }
    scheduledChange { plan { name } billingCycle effectiveAt cancels } }
  plans { id slug name description monthlyPrice { ${MONEY} } annualPrice { ${MONEY} } monthlyQuota perSecond maxApiKeys
    maxWebhookEndpoints maxMembers quotaMode }
  upcomingInvoice { periodStart periodEnd lines { ${LINE} } total { ${MONEY} } forecastLines { ${LINE} } forecastTotal { ${MONEY} } }
  invoices(first: 20) { totalCount nodes { ${INVOICE_ROW} } }
  paymentMethods { id brand last4 expMonth expYear isDefault createdAt }
}`;

function Lines({ lines, total, label }) {
  return (
    <div className="table-wrap"><table className="table" aria-label={label}>
      <thead>
        <tr>
          <th>Description</th>
          <th>Period</th>
          <th className="num">Qty</th>
          <th className="num">Amount</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((l, i) => (
          <tr key={i}>
            <td>{l.description}</td>
            <td className="small muted">
              {day(l.periodStart)} – {day(l.periodEnd)}
            </td>
            <td className="num">{num(l.quantity)}</td>
            <td className="num">{money(l.amount)}</td>
          </tr>
        ))}
      </tbody>
      {total && (
        <tfoot>
          <tr>
            <th colSpan={3}>Total</th>
            <th className="num">{money(total)}</th>
          </tr>
        </tfoot>
      )}
    </table></div>
  );
}

function ChangePlan({ plans, sub, onClose, onDone }) {
  const [planId, setPlanId] = useState(plans.find((p) => p.id !== sub.plan.id && p.monthlyPrice)?.id || plans[0].id);
  const [cycle, setCycle] = useState(sub.billingCycle);
  const preview = useQuery(
    `query Preview($p: ID!, $c: BillingCycle!) { previewSubscriptionChange(planId: $p, billingCycle: $c) {
      immediate effectiveAt periodEnd billingCycle plan { name } lines { ${LINE} } total { ${MONEY} } } }`,
    { p: planId, c: cycle },
  );
  const act = useAction();
  const [done, setDone] = useState(null);
  if (done) {
    return (
      <Modal title="Plan changed" onClose={onClose}>
        <p>
          You are on <strong>{done.subscription.plan.name}</strong> ({done.subscription.billingCycle.toLowerCase()}).
          {done.subscription.scheduledChange && ` ${done.subscription.scheduledChange.plan.name} starts ${day(done.subscription.scheduledChange.effectiveAt)}.`}
        </p>
        {done.invoice ? (
          <p>
            Proration invoice <strong>{done.invoice.number}</strong>: {money(done.invoice.total)} — <Status value={done.invoice.status} />{' '}
            <Link to={`/billing/invoices/${done.invoice.id}`} onClick={onClose}>
              View invoice
            </Link>
          </p>
        ) : (
          <p className="muted">Nothing is charged now.</p>
        )}
        <div className="modal-foot">
          <button type="button" className="btn primary" onClick={onClose}>
            Done
          </button>
        </div>
      </Modal>
    );
  }
  const p = preview.data?.previewSubscriptionChange;
  return (
    <Modal title="Change plan" onClose={onClose} wide>
      <div className="row wrap">
        <Field label="Plan">
          <select value={planId} onChange={(e) => setPlanId(e.target.value)}>
            {plans.map((pl) => (
              <option key={pl.id} value={pl.id}>
                {pl.name} — {pl.monthlyPrice ? `${money(pl.monthlyPrice)}/month` : 'custom pricing'}
                {pl.id === sub.plan.id ? ' (current)' : ''}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Billing cycle">
          <select value={cycle} onChange={(e) => setCycle(e.target.value)}>
            <option value="MONTHLY">Monthly</option>
            <option value="ANNUAL">Annual</option>
          </select>
        </Field>
      </div>
      <section aria-label="Proration preview" className="preview">
        <h3>Preview</h3>
        {preview.error ? (
          <ErrorBox error={preview.error} onRetry={() => preview.reload()} />
        ) : !p ? (
          <Loading label="Computing the proration…" />
        ) : (
          <>
            <p data-testid="preview-summary">
              {p.immediate ? (
                <>
                  An upgrade: it takes effect <strong>now</strong> and <strong>{money(p.total)}</strong> is charged to the default card
                  for the rest of the period (until {day(p.periodEnd)}).
                </>
              ) : (
                <>
                  Takes effect <strong>{day(p.effectiveAt)}</strong> (the period end); nothing is charged now.
                </>
              )}
            </p>
            {p.lines.length > 0 && <Lines lines={p.lines} total={p.total} label="Proration lines" />}
          </>
        )}
      </section>
      <ErrorBox error={act.error} title="The plan was not changed" />
      <div className="modal-foot">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="btn primary"
          disabled={!p || act.busy}
          onClick={async () => {
            const r = await act.run(() =>
              gql(
                `mutation($p: ID!, $c: BillingCycle!) { changeSubscription(planId: $p, billingCycle: $c) {
                  subscription { plan { name } billingCycle scheduledChange { plan { name } effectiveAt } }
                  invoice { id number status total { ${MONEY} } } } }`,
                { p: planId, c: cycle },
              ),
            );
            if (r) {
              setDone(r.changeSubscription);
              onDone();
            }
          }}
        >
          {act.busy ? 'Changing…' : p?.immediate ? `Upgrade and pay ${money(p.total)}` : 'Confirm change'}
        </button>
      </div>
    </Modal>
  );
}

function AddCard({ onClose, onDone }) {
  const act = useAction();
  return (
    <Modal title="Add a card" onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const v = formValues(e.currentTarget);
          const r = await act.run(() =>
            gql('mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) { id } }', {
              input: {
                number: v.number,
                expMonth: Number(v.expMonth),
                expYear: Number(v.expYear),
                cvc: v.cvc,
                makeDefault: v.makeDefault === 'on',
              },
            }),
          );
          if (r) {
            onDone();
            onClose();
          }
        }}
      >
        <Field
          label="Card number"
          hint="Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined, 4000 0000 0000 9995 has insufficient funds."
        >
          <input name="number" inputMode="numeric" autoComplete="cc-number" required />
        </Field>
        <div className="row wrap">
          <Field label="Month" className="narrow">
            <input name="expMonth" type="number" min={1} max={12} required autoComplete="cc-exp-month" />
          </Field>
          <Field label="Year" className="narrow">
            <input name="expYear" type="number" min={2000} max={2100} required autoComplete="cc-exp-year" />
          </Field>
          <Field label="CVC" className="narrow">
            <input name="cvc" inputMode="numeric" required minLength={3} maxLength={4} autoComplete="cc-csc" />
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" name="makeDefault" /> Make it the default card
        </label>
        <ErrorBox error={act.error} title="The card was not added" />
        <div className="modal-foot">
          <button type="submit" className="btn primary" disabled={act.busy}>
            Add card
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function Billing() {
  const q = useQuery(QUERY);
  const [modal, setModal] = useState(null);
  const act = useAction();
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });
  return (
    <Page title="Billing">
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading billing…">
        {(d) => {
          const s = d.subscription;
          return (
            <>
              {s && (
                <div className="grid2">
                  <Card
                    title="Subscription"
                    actions={
                      <button type="button" className="btn primary" onClick={() => setModal('plan')}>
                        Change plan
                      </button>
                    }
                  >
                    <dl className="props">
                      <dt>Plan</dt>
                      <dd>
                        <strong data-testid="current-plan">{s.plan.name}</strong>{' '}
                        {s.plan.monthlyPrice && `${money(s.billingCycle === 'ANNUAL' ? s.plan.annualPrice : s.plan.monthlyPrice)}/${s.billingCycle === 'ANNUAL' ? 'year' : 'month'}`}
                      </dd>
                      <dt>Status</dt>
                      <dd>
                        <Status value={s.status} />
                      </dd>
                      <dt>Current period</dt>
                      <dd>
                        {day(s.currentPeriodStart)} – {day(s.currentPeriodEnd)}
                      </dd>
                      <dt>Next invoice</dt>
                      <dd>{day(s.nextBillingDate)}</dd>
                      <dt>Monthly quota</dt>
                      <dd>
                        {s.plan.monthlyQuota == null ? 'unlimited' : num(s.plan.monthlyQuota)} ({s.plan.quotaMode.toLowerCase()})
                      </dd>
                      <dt>Spend cap</dt>
                      <dd>{s.spendCap ? money(s.spendCap) : 'none'}</dd>
                    </dl>
                    {s.scheduledChange && (
                      <div className="warn-box">
                        {s.scheduledChange.cancels ? 'Cancels' : `Changes to ${s.scheduledChange.plan.name}`} on{' '}
                        {day(s.scheduledChange.effectiveAt)}.{' '}
                        <button type="button" className="btn small" disabled={act.busy} onClick={() => mutate('mutation { resumeSubscription { id } }')}>
                          Undo
                        </button>
                      </div>
                    )}
                    {!s.cancelAtPeriodEnd && s.plan.monthlyPrice?.amount > 0 && (
                      <button type="button" className="btn small ghost" disabled={act.busy} onClick={() => mutate('mutation { cancelSubscription { id } }')}>
                        Cancel at period end
                      </button>
                    )}
                    <form
                      className="row wrap"
                      aria-label="Spend cap"
                      onSubmit={(e) => {
                        e.preventDefault();
                        const v = formValues(e.currentTarget).cap;
                        mutate('mutation($a: Int) { setSpendCap(amount: $a) { id } }', { a: v === '' ? null : Math.round(Number(v) * 100) });
                      }}
                    >
                      <Field label="Overage spend cap (blank = none)" className="inline">
                        <input name="cap" type="number" min={0} step="0.01" defaultValue={s.spendCap ? s.spendCap.amount / 100 : ''} />
                      </Field>
                      <button type="submit" className="btn small">
                        Set cap
                      </button>
                    </form>
                  </Card>
                  <Card title="Upcoming invoice">
                    {d.upcomingInvoice ? (
                      <>
                        <p>
                          So far this month: <strong>{money(d.upcomingInvoice.total)}</strong>; forecast to {day(d.upcomingInvoice.periodEnd)}:{' '}
                          <strong>{money(d.upcomingInvoice.forecastTotal)}</strong>.
                        </p>
                        {d.upcomingInvoice.forecastLines.length ? (
                          <Lines lines={d.upcomingInvoice.forecastLines} total={d.upcomingInvoice.forecastTotal} label="Forecast lines" />
                        ) : (
                          <Empty>Nothing to bill.</Empty>
                        )}
                      </>
                    ) : (
                      <Empty>Not available.</Empty>
                    )}
                  </Card>
                </div>
              )}
              <Card
                title="Payment methods"
                actions={
                  <button type="button" className="btn" onClick={() => setModal('card')}>
                    Add card
                  </button>
                }
              >
                {d.paymentMethods == null ? (
                  <Unavailable />
                ) : d.paymentMethods.length ? (
                  <ul className="list">
                    {d.paymentMethods.map((m) => (
                      <li key={m.id}>
                        <strong>{m.brand}</strong> •••• {m.last4} <span className="muted">exp {String(m.expMonth).padStart(2, '0')}/{m.expYear}</span>{' '}
                        {m.isDefault ? (
                          <Status value="ACTIVE" />
                        ) : (
                          <button type="button" className="btn small" onClick={() => mutate('mutation($id: ID!) { setDefaultPaymentMethod(id: $id) { id } }', { id: m.id })}>
                            Make default
                          </button>
                        )}{' '}
                        <button type="button" className="btn small ghost" onClick={() => mutate('mutation($id: ID!) { removePaymentMethod(id: $id) }', { id: m.id })}>
                          Remove
                        </button>
                      </li>
                    ))}
                  </ul>
                ) : (
                  <Empty>No card on file. Upgrades are charged to the default card.</Empty>
                )}
              </Card>
              <Card title="Invoices">
                {d.invoices == null ? (
                  <Unavailable />
                ) : d.invoices.nodes.length ? (
                  <div className="table-wrap">
                    <table className="table" aria-label="Invoices">
                      <thead>
                        <tr>
                          <th>Number</th>
                          <th>Kind</th>
                          <th>Period</th>
                          <th>Status</th>
                          <th className="num">Total</th>
                          <th className="num">Due</th>
                        </tr>
                      </thead>
                      <tbody>
                        {d.invoices.nodes.map((i) => (
                          <tr key={i.id}>
                            <td>
                              <Link to={`/billing/invoices/${i.id}`}>{i.number || i.id}</Link>
                            </td>
                            <td>{i.kind.toLowerCase()}</td>
                            <td className="small">
                              {day(i.periodStart)} – {day(i.periodEnd)}
                            </td>
                            <td>
                              <Status value={i.status} />
                            </td>
                            <td className="num">{money(i.total)}</td>
                            <td className="num">{money(i.amountDue)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                ) : (
                  <Empty>No invoices yet.</Empty>
                )}
              </Card>
              {modal === 'plan' && d.plans && s && <ChangePlan plans={d.plans} sub={s} onClose={() => setModal(null)} onDone={() => q.reload(true)} />}
              {modal === 'card' && <AddCard onClose={() => setModal(null)} onDone={() => q.reload(true)} />}
            </>
          );
        }}
      </QueryState>
    </Page>
  );
}

export function InvoiceDetail({ id }) {
  const q = useQuery(
    `query Invoice($id: ID!) { invoice(id: $id) { ${INVOICE_ROW} currency amountPaid { ${MONEY} } finalizedAt attemptCount nextPaymentAttempt
      lines { ${LINE} } payments { id status amount { ${MONEY} } failureCode createdAt } }
      paymentMethods { id brand last4 isDefault } }`,
    { id },
  );
  const [html, setHtml] = useState(null);
  const act = useAction();
  const inv = q.data?.invoice;
  useEffect(() => () => html?.url && URL.revokeObjectURL(html.url), [html]);
  return (
    <Page title={inv ? `Invoice ${inv.number || inv.id}` : 'Invoice'} subtitle={<Link to="/billing">← Billing</Link>}>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading the invoice…">
        {(d) => (
          <>
            <div className="row wrap actions-bar">
              <Status value={inv.status} />
              <span>{inv.kind.toLowerCase()} invoice</span>
              <span className="muted">
                {day(inv.periodStart)} – {day(inv.periodEnd)}
              </span>
              <span className="grow" />
              <button
                type="button"
                className="btn"
                disabled={act.busy}
                onClick={() =>
                  act.run(async () => {
                    const text = await restText(`/api/v2/billing/invoices/${encodeURIComponent(id)}/html`);
                    const url = URL.createObjectURL(new Blob([text], { type: 'text/html' }));
                    setHtml({ text, url });
                  })
                }
              >
                View HTML invoice
              </button>
              {inv.status === 'OPEN' && (
                <button
                  type="button"
                  className="btn primary"
                  disabled={act.busy}
                  onClick={() =>
                    act.run(async () => {
                      await gql('mutation($id: ID!) { payInvoice(invoiceId: $id) { payment { status failureCode } } }', { id });
                      q.reload(true);
                    })
                  }
                >
                  Pay {money(inv.amountDue)} now
                </button>
              )}
            </div>
            <Card title="Lines">
              <Lines lines={inv.lines} total={inv.total} label="Invoice lines" />
              <p className="muted">
                Paid {money(inv.amountPaid)} · due {money(inv.amountDue)}
                {inv.paidAt && ` · paid ${date(inv.paidAt)}`}
                {inv.nextPaymentAttempt && ` · next attempt ${date(inv.nextPaymentAttempt)}`}
              </p>
            </Card>
            <Card title="Payments">
              {inv.payments.length ? (
                <ul className="list">
                  {inv.payments.map((p) => (
                    <li key={p.id}>
                      <Status value={p.status} /> {money(p.amount)} <span className="muted">{date(p.createdAt)}</span>{' '}
                      {p.failureCode && <code>{p.failureCode}</code>}
                    </li>
                  ))}
                </ul>
              ) : (
                <Empty>No payment yet.</Empty>
              )}
            </Card>
            {html && (
              <Modal title={`Invoice ${inv.number || ''}`} onClose={() => setHtml(null)} wide>
                <p>
                  <a href={html.url} target="_blank" rel="noopener">
                    Open in a new tab
                  </a>{' '}
                  ·{' '}
                  <a href={html.url} download={`${inv.number || inv.id}.html`}>
                    Download
                  </a>
                </p>
                <iframe className="invoice-frame" title="Invoice (HTML)" sandbox="" srcDoc={html.text} />
              </Modal>
            )}
            {d.paymentMethods && !d.paymentMethods.length && inv.status === 'OPEN' && (
              <p className="muted">
                No card on file: <Link to="/billing">add one</Link> to pay.
              </p>
            )}
          </>
        )}
      </QueryState>
    </Page>
  );
}

