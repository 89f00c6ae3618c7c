import { useState } from 'react';
import { gql } from '../api.js';
import { useAction, useQuery } from '../hooks.js';
import { useSession } from '../session.js';
import {
  Card, Empty, ErrorBox, Field, Modal, Page, QueryState, Status, Time, bytes, date, formValues, num,
} from '../ui.jsx';

const ROLES = ['OWNER', 'ADMIN', 'MEMBER', 'BILLING', 'VIEWER'];

export function Team() {
  const session = useSession();
  const q = useQuery(`query Team {
    members { userId name email role joinedAt }
    invitations(first: 50, status: PENDING) { totalCount nodes { id email role status createdAt expiresAt lastSentAt sentCount } }
  }`);
  const act = useAction();
  const [modal, setModal] = useState(null);
  const [notice, setNotice] = useState(null);
  const manage = session.role === 'OWNER' || session.role === 'ADMIN';
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });
  return (
    <Page
      title="Team"
      subtitle={`${session.org.name}${session.role ? ` · you are ${session.role.toLowerCase()}` : ''}`}
      actions={
        <>
          {manage && (
            <button type="button" className="btn primary" onClick={() => setModal('invite')}>
              Invite member
            </button>
          )}
          {session.kind === 'USER' && (
            <button type="button" className="btn" onClick={() => setModal('org')}>
              New organization
            </button>
          )}
        </>
      }
    >
      <ErrorBox error={act.error} />
      {notice && (
        <div className="ok-box" role="status">
          {notice}
        </div>
      )}
      <QueryState q={q} label="Loading the team…">
        {(d) => (
          <>
            <Card title={`Members (${d.members?.length ?? 0})`}>
              {d.members?.length ? (
                <div className="table-wrap">
                  <table className="table" aria-label="Members">
                    <thead>
                      <tr>
                        <th>Name</th>
                        <th>Email</th>
                        <th>Role</th>
                        <th>Joined</th>
                        <th>
                          <span className="sr-only">Actions</span>
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.members.map((m) => (
                        <tr key={m.userId}>
                          <td>
                            {m.name} {m.userId === session.user?.id && <span className="muted">(you)</span>}
                          </td>
                          <td>{m.email}</td>
                          <td>
                            {manage && m.userId !== session.user?.id ? (
                              <select
                                aria-label={`Role of ${m.name}`}
                                value={m.role}
                                disabled={act.busy}
                                onChange={(e) =>
                                  mutate('mutation($u: ID!, $r: Role!) { changeMemberRole(userId: $u, role: $r) { userId role } }', {
                                    u: m.userId,
                                    r: e.target.value,
                                  })
                                }
                              >
                                {ROLES.map((r) => (
                                  <option key={r} value={r}>
                                    {r.toLowerCase()}
                                  </option>
                                ))}
                              </select>
                            ) : (
                              m.role.toLowerCase()
                            )}
                          </td>
                          <td>{date(m.joinedAt)}</td>
                          <td className="actions">
                            {manage && m.userId !== session.user?.id && (
                              <button type="button" className="btn small danger" onClick={() => mutate('mutation($u: ID!) { removeMember(userId: $u) }', { u: m.userId })}>
                                Remove
                              </button>
                            )}
                            {session.role === 'OWNER' && m.userId !== session.user?.id && (
                              <button type="button" className="btn small ghost" onClick={() => setModal({ transfer: m })}>
                                Make owner
                              </button>
                            )}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              ) : (
                <Empty>No members visible.</Empty>
              )}
              {!session.org.isPersonal && session.kind === 'USER' && (
                <button type="button" className="btn small ghost" onClick={() => mutate('mutation { leaveOrganization }').then((r) => r && session.refreshOrgs())}>
                  Leave this organization
                </button>
              )}
            </Card>
            <Card title="Pending invitations">
              {d.invitations ? (
                d.invitations.nodes.length ? (
                  <ul className="list">
                    {d.invitations.nodes.map((i) => (
                      <li key={i.id}>
                        <strong>{i.email}</strong> as {i.role.toLowerCase()}{' '}
                        <span className="muted">
                          sent <Time value={i.lastSentAt} /> ({i.sentCount}×), expires {date(i.expiresAt)}
                        </span>{' '}
                        <button type="button" className="btn small" onClick={() => mutate('mutation($id: ID!) { resendInvitation(id: $id) { mailSent } }', { id: i.id })}>
                          Resend
                        </button>{' '}
                        <button type="button" className="btn small danger" onClick={() => mutate('mutation($id: ID!) { revokeInvitation(id: $id) { id } }', { id: i.id })}>
                          Revoke
                        </button>
                      </li>
                    ))}
                  </ul>
                ) : (
                  <Empty>No pending invitations.</Empty>
                )
              ) : (
                <p className="muted">Invitations are visible to owners and admins.</p>
              )}
            </Card>
          </>
        )}
      </QueryState>
      {modal === 'invite' && (
        <Modal title="Invite a member" onClose={() => setModal(null)}>
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const v = formValues(e.currentTarget);
              const r = await mutate('mutation($input: InviteMemberInput!) { inviteMember(input: $input) { mailSent invitation { id email } } }', {
                input: { email: v.email, role: v.role },
              });
              if (r) {
                setModal(null);
                setNotice(
                  r.inviteMember.mailSent
                    ? `Invitation mailed to ${r.inviteMember.invitation.email}.`
                    : `Invitation created for ${r.inviteMember.invitation.email}, but the mail did not go out: resend it.`,
                );
              }
            }}
          >
            <Field label="Email">
              <input name="email" type="email" required />
            </Field>
            <Field label="Role">
              <select name="role" defaultValue="MEMBER">
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {r.toLowerCase()}
                  </option>
                ))}
              </select>
            </Field>
            <ErrorBox error={act.error} />
            <div className="modal-foot">
              <button type="submit" className="btn primary" disabled={act.busy}>
                Send invitation
              </button>
            </div>
          </form>
        </Modal>
      )}
      {modal === 'org' && (
        <Modal title="New organization" onClose={() => setModal(null)}>
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const name = formValues(e.currentTarget).name;
              const r = await act.run(() => gql('mutation($n: String!) { createOrganization(name: $n) { id } }', { n: name }));
              if (r) {
                setModal(null);
                await session.refreshOrgs();
                session.switchOrg(r.createOrganization.id);
              }
            }}
          >
            <Field label="Name">
              <input name="name" required maxLength={100} />
            </Field>
            <ErrorBox error={act.error} />
            <div className="modal-foot">
              <button type="submit" className="btn primary" disabled={act.busy}>
                Create and switch
              </button>
            </div>
          </form>
        </Modal>
      )}
      {modal?.transfer && (
        <Modal title="Transfer ownership" onClose={() => setModal(null)}>
          <p>
            {modal.transfer.name} becomes the OWNER; you become ADMIN.
          </p>
          <div className="modal-foot">
            <button
              type="button"
              className="btn danger"
              onClick={async () => {
                const r = await mutate('mutation($u: ID!) { transferOwnership(userId: $u) }', { u: modal.transfer.userId });
                if (r) {
                  setModal(null);
                  session.refreshOrgs();
                }
              }}
            >
              Transfer
            </button>
          </div>
        </Modal>
      )}
    </Page>
  );
}

export function Settings() {
  const session = useSession();
  const q = useQuery(`query Settings {
    viewer { id kind scopes role user { id email name emailVerified createdAt isPlatformAdmin } }
    rateLimitStatus { policy source degraded windows { name limit capacity remaining resetAt } monthlyQuota { limit used remaining resetAt } concurrency }
    enabledFeatures
    auditLog(first: 15) { nodes { id action actorType actorId targetType targetId ip createdAt } }
  }`);
  const exportsQ = useQuery('query Exports { organizationExports { id status createdAt finishedAt bytes downloadUrl expiresAt error } }', {}, {
    skip: !(session.role === 'OWNER' || session.role === 'ADMIN'),
  });
  const act = useAction();
  const [notice, setNotice] = useState(null);
  const u = session.user;
  return (
    <Page title="Settings">
      <ErrorBox error={act.error} />
      {notice && (
        <div className="ok-box" role="status">
          {notice}
        </div>
      )}
      <QueryState q={q} label="Loading settings…">
        {(d) => (
          <>
            <div className="grid2">
              <Card title="Profile">
                {u ? (
                  <dl className="props">
                    <dt>Name</dt>
                    <dd>{u.name}</dd>
                    <dt>Email</dt>
                    <dd>
                      {u.email} {d.viewer.user?.emailVerified ? <Status value="ACTIVE" /> : <span className="muted">(not confirmed)</span>}
                    </dd>
                    <dt>Account created</dt>
                    <dd>{date(u.createdAt)}</dd>
                    <dt>Platform administrator</dt>
                    <dd>{u.isPlatformAdmin ? 'yes' : 'no'}</dd>
                  </dl>
                ) : (
                  <p className="muted">Signed in with an API key.</p>
                )}
                {u && !d.viewer.user?.emailVerified && session.kind === 'USER' && (
                  <button
                    type="button"
                    className="btn small"
                    onClick={async () => {
                      const r = await act.run(() => gql('mutation { requestEmailVerification }'));
                      if (r) setNotice(r.requestEmailVerification ? 'A confirmation link was mailed to you.' : 'The mail could not be sent; try again later.');
                    }}
                  >
                    Send confirmation link
                  </button>
                )}
              </Card>
              <Card title="Password">
                {session.kind === 'USER' ? (
                  <PasswordForm onDone={(n) => setNotice(`Password changed; ${n} other session${n === 1 ? '' : 's'} ended.`)} />
                ) : (
                  <p className="muted">Signed in with an API key: sign in with your email and password to change it.</p>
                )}
                {u && (
                  <button
                    type="button"
                    className="btn small ghost"
                    onClick={async () => {
                      const r = await act.run(() => gql('mutation($e: String!) { requestPasswordReset(email: $e) }', { e: u.email }));
                      if (r) setNotice(`A password reset link was mailed to ${u.email}.`);
                    }}
                  >
                    Forgot it? Mail me a reset link
                  </button>
                )}
              </Card>
            </div>
            {session.kind === 'USER' && (
              <div className="grid2">
                <Card title="Name">
                  <ProfileForm name={u?.name || ''} onDone={(name) => setNotice(`Your name is now ${name}.`)} />
                </Card>
                <Card title="Sessions">
                  <Sessions onSignOut={session.signOut} />
                </Card>
              </div>
            )}
            <div className="grid2">
              <Card title="This credential">
                <dl className="props">
                  <dt>Kind</dt>
                  <dd>{d.viewer.kind.toLowerCase().replace('_', ' ')}</dd>
                  <dt>Role here</dt>
                  <dd>{d.viewer.role ? d.viewer.role.toLowerCase() : '—'}</dd>
                  <dt>Scopes</dt>
                  <dd className="scopes-cell">{d.viewer.scopes.join(' ')}</dd>
                  <dt>Features on</dt>
                  <dd>{d.enabledFeatures?.length ? d.enabledFeatures.join(', ') : 'none'}</dd>
                </dl>
              </Card>
              <Card title="Rate limits now">
                {d.rateLimitStatus ? (
                  <>
                    <p>
                      Policy <code>{d.rateLimitStatus.policy}</code> ({d.rateLimitStatus.source.toLowerCase()})
                      {d.rateLimitStatus.degraded && ' — degraded: this node decides alone'}
                    </p>
                    <ul className="list">
                      {d.rateLimitStatus.windows.map((w) => (
                        <li key={w.name}>
                          per {w.name}: {num(w.remaining)} of {num(w.capacity)} left (limit {num(w.limit)})
                        </li>
                      ))}
                      {d.rateLimitStatus.monthlyQuota && (
                        <li>
                          month: {num(d.rateLimitStatus.monthlyQuota.used)} of {num(d.rateLimitStatus.monthlyQuota.limit)} used
                        </li>
                      )}
                    </ul>
                  </>
                ) : (
                  <Empty>Not available.</Empty>
                )}
              </Card>
            </div>
            {(session.role === 'OWNER' || session.role === 'ADMIN') && (
              <Card
                title="Data export"
                actions={
                  <button
                    type="button"
                    className="btn"
                    disabled={act.busy}
                    onClick={() =>
                      act.run(async () => {
                        await gql('mutation { exportOrganization { id status } }');
                        exportsQ.reload(true);
                      })
                    }
                  >
                    Export organization data
                  </button>
                }
              >
                <QueryState q={exportsQ}>
                  {(e) =>
                    e.organizationExports.length ? (
                      <ul className="list">
                        {e.organizationExports.map((x) => (
                          <li key={x.id}>
                            <Status value={x.status === 'READY' ? 'ACTIVE' : x.status} /> {date(x.createdAt)} {x.bytes ? bytes(x.bytes) : ''}{' '}
                            {x.downloadUrl && (
                              <a href={x.downloadUrl} download>
                                Download
                              </a>
                            )}{' '}
                            {x.error && <span className="bad-text">{x.error}</span>}
                          </li>
                        ))}
                      </ul>
                    ) : (
                      <Empty>No export yet.</Empty>
                    )
                  }
                </QueryState>
              </Card>
            )}
            <Card title="Audit log (latest)">
              {d.auditLog ? (
                d.auditLog.nodes.length ? (
                  <div className="table-wrap">
                    <table className="table" aria-label="Audit log">
                      <thead>
                        <tr>
                          <th>When</th>
                          <th>Action</th>
                          <th>By</th>
                          <th>Target</th>
                          <th>IP</th>
                        </tr>
                      </thead>
                      <tbody>
                        {d.auditLog.nodes.map((a) => (
                          <tr key={a.id}>
                            <td>
                              <Time value={a.createdAt} />
                            </td>
                            <td>
                              <code>{a.action}</code>
                            </td>
                            <td className="small">{a.actorId}</td>
                            <td className="small">{a.targetId}</td>
                            <td className="small">{a.ip || '—'}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                ) : (
                  <Empty>Nothing yet.</Empty>
                )
              ) : (
                <p className="muted">Not visible with this role.</p>
              )}
            </Card>
          </>
        )}
      </QueryState>
    </Page>
  );
}

/** The new password, given with the current one; the other sessions end. */
function PasswordForm({ onDone }) {
  const act = useAction();
  const [mismatch, setMismatch] = useState(false);
  return (
    <form
      className="stack-form"
      aria-label="Change password"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const v = formValues(form);
        if (v.newPassword !== v.confirm) {
          setMismatch(true);
          return;
        }
        setMismatch(false);
        const r = await act.run(() =>
          gql('mutation($i: ChangePasswordInput!) { changePassword(input: $i) { sessionsRevoked } }', {
            i: { currentPassword: v.currentPassword, newPassword: v.newPassword },
          }),
        );
        if (r) {
          form.reset();
          onDone(r.changePassword.sessionsRevoked);
        }
      }}
    >
      <ErrorBox error={act.error} />
      <Field label="Current password">
        <input name="currentPassword" type="password" autoComplete="current-password" required />
      </Field>
      <Field label="New password" hint="8 to 128 characters">
        <input name="newPassword" type="password" autoComplete="new-password" minLength={8} maxLength={128} required />
      </Field>
      <Field label="New password again">
        <input name="confirm" type="password" autoComplete="new-password" required />
      </Field>
      {mismatch && (
        <div className="error-box" role="alert">
          The two new passwords differ.
        </div>
      )}
      <button type="submit" className="btn primary" disabled={act.busy}>
        Change password
      </button>
    </form>
  );
}

/** The user's name. */
function ProfileForm({ name, onDone }) {
  const act = useAction();
  return (
    <form
      className="stack-form"
      aria-label="Profile"
      onSubmit={async (e) => {
        e.preventDefault();
        const v = formValues(e.currentTarget);
        const r = await act.run(() => gql('mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { name } }', { i: { name: v.name } }));
        if (r) onDone(r.updateProfile.name);
      }}
    >
      <ErrorBox error={act.error} />
      <Field label="Your name" hint="Shown to teammates, 1 to 100 characters">
        <input name="name" defaultValue={name} maxLength={100} required />
      </Field>
      <button type="submit" className="btn" disabled={act.busy}>
        Save name
      </button>
    </form>
  );
}

/** The user's open sessions; revoking the current one signs out. */
function Sessions({ onSignOut }) {
  const q = useQuery('query Sessions { sessions { id current createdAt expiresAt refreshExpiresAt } }');
  const act = useAction();
  return (
    <QueryState q={q} label="Loading sessions…">
      {(d) => (
        <>
          <ErrorBox error={act.error} />
          <table className="table" aria-label="Sessions">
            <thead>
              <tr>
                <th>Opened</th>
                <th>Renewable until</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.sessions.map((s) => (
                <tr key={s.id} data-session={s.id}>
                  <td>
                    <Time value={s.createdAt} /> {s.current && <Status value="ACTIVE" />} {s.current && <span className="muted">this tab</span>}
                  </td>
                  <td>{date(s.refreshExpiresAt)}</td>
                  <td>
                    <button
                      type="button"
                      className="btn small danger"
                      disabled={act.busy}
                      onClick={async () => {
                        if (s.current) {
                          onSignOut();
                          return;
                        }
                        const r = await act.run(() => gql('mutation($id: ID!) { revokeSession(id: $id) }', { id: s.id }));
                        if (r) q.reload();
                      }}
                    >
                      {s.current ? 'Sign out' : 'Revoke'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </QueryState>
  );
}
