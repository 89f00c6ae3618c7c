// Sample operations: the API-key lifecycle, then webhooks. Every sample is validated against
// schema.graphql by e2e/samples.mjs (run by `cargo test`), so a schema change that breaks one
// fails the tests.

const KEY_ID_VARIABLES = JSON.stringify(
  { id: 'paste an apiKey id from CreateKey or ListKeys' },
  null,
  2,
);

const ENDPOINT_ID_VARIABLES = JSON.stringify(
  { id: 'paste a webhook endpoint id (whk_…) from CreateWebhookEndpoint' },
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
  {
    name: 'EventTypes',
    group: 'Webhooks',
    description: 'The event catalog: every type with its payload schema and a sample',
    query: `query EventTypes {
  eventTypes {
    name
    category
    description
    deprecated
    builtIn
    sample
  }
}
`,
  },
  {
    name: 'CreateWebhookEndpoint',
    group: 'Webhooks',
    description: 'Send key events to a URL (the signing secret is shown once)',
    query: `mutation CreateWebhookEndpoint {
  createWebhookEndpoint(input: {
    url: "https://example.com/webhooks/gantry",
    description: "Key activity",
    filterTypes: ["key.*", "webhook.test"]
  }) {
    secret
    endpoint { id url filterTypes enabled retrySchedule timeoutSeconds }
  }
}
`,
  },
  {
    name: 'SendTestEvent',
    group: 'Webhooks',
    description: "Send the type's sample payload to an endpoint now",
    query: `mutation SendTestEvent($id: ID!) {
  sendTestEvent(endpointId: $id, type: "webhook.test") {
    id
    status
    attemptCount
  }
}
`,
    variables: ENDPOINT_ID_VARIABLES,
  },
  {
    name: 'WebhookDeliveries',
    group: 'Webhooks',
    description: 'Deliveries of an endpoint with every attempt: request, response, latency',
    query: `query WebhookDeliveries($id: ID!) {
  webhookEndpoint(id: $id) {
    url
    enabled
    disabledReason
    stats { succeeded pending failed successRateLast24Hours }
  }
  webhookDeliveries(endpointId: $id, first: 10) {
    totalCount
    edges {
      node {
        id
        eventType
        status
        attemptCount
        nextAttemptAt
        attempts { attempt responseStatus errorKind errorMessage latencyMs createdAt }
      }
    }
  }
}
`,
    variables: ENDPOINT_ID_VARIABLES,
  },
  {
    name: 'RotateWebhookSecret',
    group: 'Webhooks',
    description: 'New signing secret; the old one keeps signing for an hour',
    query: `mutation RotateWebhookSecret($id: ID!) {
  rotateWebhookSecret(id: $id, gracePeriodSeconds: 3600) {
    secret
    previousSecretExpiresAt
  }
}
`,
    variables: ENDPOINT_ID_VARIABLES,
  },
  {
    name: 'WebhookDelivered',
    group: 'Webhooks',
    description: 'Each delivery attempt to an endpoint, live (graphql-transport-ws)',
    query: `subscription WebhookDelivered($id: ID!) {
  webhookDelivered(webhookId: $id) {
    deliveryId
    eventType
    attempt
    status
    responseStatus
    errorKind
    latencyMs
    nextAttemptAt
  }
}
`,
    variables: ENDPOINT_ID_VARIABLES,
  },
];

/** Samples without a group are the API-key lifecycle. */
export const groupOf = (sample) => sample.group ?? 'API keys';

/** GraphiQL `defaultTabs` (the key lifecycle): used only when the browser has no saved tabs yet.
 * Every sample is in the picker. */
export const DEFAULT_TABS = SAMPLES.filter((s) => !s.group).map(({ query, variables }) => ({
  query,
  variables: variables ?? null,
}));
