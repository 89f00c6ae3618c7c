import { createContext, useContext } from 'react';

/**
 * The signed-in state: `{ token, kind, user, viewer, orgs, orgId, role, isAdmin, signOut,
 * switchOrg, refreshOrgs }`. Held in React state only.
 */
export const SessionContext = createContext(null);

export function useSession() {
  return useContext(SessionContext);
}
