// Sample operations for the API-key lifecycle. Field and argument names match
// the Gantry schema exactly; keep them in sync when the schema changes.

const KEY_ID_VARIABLES = JSON.stringify(
  { id: 'paste an apiKey id from CreateKey or ListKeys' },
  null,
  2,
);

export const SAMPLES = [
  {
    name: 'Register',
    description: 'Create a user and get a session token',
    query: `mutation Register {
  register(input: {
    email: "dev@example.com",
    password: "correct horse battery",
    name: "Dev"
  }) {
    user { id email }
    session { token refreshToken expiresAt }
  }
}
`,
  },
  {
    name: 'Login',
    description: 'Get a session token for an existing user',
    query: `mutation Login {
  login(input: {
    email: "dev@example.com",
    password: "correct horse battery"
  }) {
    session { token refreshToken expiresAt }
  }
}
`,
  },
  {
    name: 'Viewer',
    description: 'Who does the current token belong to?',
    query: `query Viewer {
  viewer {
    id
    kind
    scopes
    organization { id name }
  }
}
`,
  },
  {
    name: 'CreateKey',
    description: 'Create an API key (the secret is shown once)',
    query: `mutation CreateKey {
  createApiKey(input: {
    name: "CI key",
    scopes: ["keys:read", "keys:write"],
    environment: TEST
  }) {
    secret
    apiKey { id name prefix scopes createdAt }
  }
}
`,
  },
  {
    name: 'ListKeys',
    description: 'Page through API keys',
    query: `query ListKeys {
  apiKeys(first: 20) {
    totalCount
    edges {
      cursor
      node { id name maskedKey environment scopes lastUsedAt revokedAt }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`,
  },
  {
    name: 'RollKey',
    description: 'Issue a new secret; the old one keeps working for an hour',
    query: `mutation RollKey($id: ID!) {
  rollApiKey(id: $id, expireOldInSeconds: 3600) {
    secret
    previousSecretExpiresAt
    apiKey { id maskedKey }
  }
}
`,
    variables: KEY_ID_VARIABLES,
  },
  {
    name: 'RevokeKey',
    description: 'Revoke an API key immediately',
    query: `mutation RevokeKey($id: ID!) {
  revokeApiKey(id: $id, reason: "leaked") {
    id
    revokedAt
  }
}
`,
    variables: KEY_ID_VARIABLES,
  },
  {
    name: 'Events',
    description: 'Live events over WebSocket (graphql-transport-ws)',
    query: `subscription Events {
  events {
    id
    type
    occurredAt
    data
  }
}
`,
  },
];

/** GraphiQL `defaultTabs`: used only when the browser has no saved tabs yet. */
export const DEFAULT_TABS = SAMPLES.map(({ query, variables }) => ({
  query,
  variables: variables ?? null,
}));
