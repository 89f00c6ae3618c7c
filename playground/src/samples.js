// Saved collections: named operations with their variables, one collection per domain (API keys,
// webhooks, usage, apps, billing). The playground lists them grouped; picking one opens it in a
// new tab with its variables. Every entry is validated against schema.graphql by
// e2e/samples.mjs (run by `cargo test`): it must parse, validate, and come with a value of the
// right shape for every required variable, so a schema change that breaks one fails the tests.

/** Pretty JSON for the variables editor. */
const vars = (value) => JSON.stringify(value, null, 2);

const KEY_ID = 'paste an apiKey id from CreateKey or ListKeys';
const ENDPOINT_ID = 'paste a webhook endpoint id (whk_…) from CreateWebhookEndpoint';
const APP_ID = 'paste an app id from CreateApp or MyApps';
const PLAN_ID = 'paste a plan id from Plans';
const INVOICE_ID = 'paste an invoice id from Invoices';

/** The last 24 hours, on whole hours, as RFC 3339 instants (for the usage history). */
function lastDay() {
  const end = new Date();
  end.setUTCMinutes(0, 0, 0);
  end.setUTCHours(end.getUTCHours() + 1);
  const start = new Date(end.getTime() - 24 * 3600 * 1000);
  const iso = (d) => d.toISOString().replace('.000Z', 'Z');
  return { start: iso(start), end: iso(end) };
}

const KEYS = [
  {
    name: 'Register',
    description: 'Create a user and get a session token',
    query: `mutation Register($input: RegisterInput!) {
  register(input: $input) {
    user { id email }
    session { token refreshToken expiresAt }
  }
}
`,
    variables: vars({
      input: { email: 'dev@example.com', password: 'correct horse battery', name: 'Dev' },
    }),
  },
  {
    name: 'Login',
    description: 'Get a session token for an existing user',
    query: `mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) {
    session { token refreshToken expiresAt }
  }
}
`,
    variables: vars({ email: 'dev@example.com', password: 'correct horse battery' }),
  },
  {
    name: 'Viewer',
    description: 'Who does the current token belong to?',
    query: `query Viewer {
  viewer {
    id
    kind
    scopes
    organization { id name plan { name } }
  }
}
`,
  },
  {
    name: 'CreateKey',
    description: 'Create an API key (the secret is shown once)',
    query: `mutation CreateKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    secret
    apiKey { id name prefix environment scopes createdAt }
  }
}
`,
    variables: vars({
      input: { name: 'CI key', scopes: ['keys:read', 'keys:write'], environment: 'TEST' },
    }),
  },
  {
    name: 'ListKeys',
    description: 'Page through API keys',
    query: `query ListKeys($first: Int, $after: String, $includeRevoked: Boolean! = false) {
  apiKeys(first: $first, after: $after, includeRevoked: $includeRevoked) {
    totalCount
    edges {
      cursor
      node { id name maskedKey environment scopes status lastUsedAt revokedAt }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`,
    variables: vars({ first: 20, includeRevoked: false }),
  },
  {
    name: 'GetKey',
    description: 'One API key with its daily request counts',
    query: `query GetKey($id: ID!, $days: Int!) {
  apiKey(id: $id) {
    id
    name
    maskedKey
    status
    scopes
    allowedIps
    expiresAt
    totalRequests
    lastUsedAt
    lastUsedIp
    usage(days: $days) { date requests }
  }
}
`,
    variables: vars({ id: KEY_ID, days: 7 }),
  },
  {
    name: 'UpdateKey',
    description: 'Rename a key, change its scopes or IP allow-list',
    query: `mutation UpdateKey($id: ID!, $input: UpdateApiKeyInput!) {
  updateApiKey(id: $id, input: $input) {
    id
    name
    scopes
    allowedIps
    updatedAt
  }
}
`,
    variables: vars({
      id: KEY_ID,
      input: { name: 'CI key (read only)', scopes: ['keys:read'], allowedIps: [] },
    }),
  },
  {
    name: 'VerifyKey',
    description: 'Check a secret the way a backend would: valid, scopes, rate limit',
    query: `mutation VerifyKey($input: VerifyApiKeyInput!) {
  verifyApiKey(input: $input) {
    valid
    code
    keyId
    name
    environment
    scopes
    rateLimit { window limit remaining resetAt monthlyUsed monthlyQuota }
  }
}
`,
    variables: vars({ input: { key: 'paste an API key secret', requiredScopes: ['keys:read'] } }),
  },
  {
    name: 'RollKey',
    description: 'Issue a new secret; the old one keeps working for an hour',
    query: `mutation RollKey($id: ID!, $expireOldInSeconds: Int = 3600) {
  rollApiKey(id: $id, expireOldInSeconds: $expireOldInSeconds) {
    secret
    previousSecretExpiresAt
    apiKey { id maskedKey }
  }
}
`,
    variables: vars({ id: KEY_ID, expireOldInSeconds: 3600 }),
  },
  {
    name: 'RevokeKey',
    description: 'Revoke an API key immediately',
    query: `mutation RevokeKey($id: ID!, $reason: String) {
  revokeApiKey(id: $id, reason: $reason) {
    id
    status
    revokedAt
    revokedReason
  }
}
`,
    variables: vars({ id: KEY_ID, reason: 'leaked' }),
  },
  {
    name: 'Events',
    description: 'Live events over WebSocket (graphql-transport-ws)',
    query: `subscription Events($types: [String!]) {
  events(types: $types) {
    id
    type
    occurredAt
    data
  }
}
`,
  },
];

const WEBHOOKS = [
  {
    name: 'EventTypes',
    description: 'The event catalog: every type with its payload schema and a sample',
    query: `query EventTypes($category: String) {
  eventTypes(category: $category) {
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
    description: 'Send key events to a URL (the signing secret is shown once)',
    query: `mutation CreateWebhookEndpoint($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    secret
    endpoint { id url filterTypes enabled retrySchedule timeoutSeconds }
  }
}
`,
    variables: vars({
      input: {
        url: 'https://example.com/webhooks/gantry',
        description: 'Key activity',
        filterTypes: ['key.*', 'webhook.test'],
      },
    }),
  },
  {
    name: 'ListWebhookEndpoints',
    description: 'Every endpoint with its delivery stats',
    query: `query ListWebhookEndpoints($first: Int) {
  webhookEndpoints(first: $first) {
    totalCount
    nodes {
      id
      url
      enabled
      disabledReason
      filterTypes
      stats { succeeded pending failed successRateLast24Hours }
    }
  }
}
`,
    variables: vars({ first: 20 }),
  },
  {
    name: 'SendTestEvent',
    description: "Send the type's sample payload to an endpoint now",
    query: `mutation SendTestEvent($id: ID!, $type: String) {
  sendTestEvent(endpointId: $id, type: $type) {
    id
    status
    attemptCount
  }
}
`,
    variables: vars({ id: ENDPOINT_ID, type: 'webhook.test' }),
  },
  {
    name: 'WebhookDeliveries',
    description: 'Deliveries of an endpoint with every attempt: request, response, latency',
    query: `query WebhookDeliveries($id: ID!, $status: WebhookDeliveryStatus) {
  webhookEndpoint(id: $id) {
    url
    enabled
    disabledReason
    stats { succeeded pending failed successRateLast24Hours }
  }
  webhookDeliveries(endpointId: $id, status: $status, first: 10) {
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
    variables: vars({ id: ENDPOINT_ID }),
  },
  {
    name: 'RetryDelivery',
    description: 'Deliver a failed event again now',
    query: `mutation RetryDelivery($id: ID!) {
  retryDelivery(id: $id) {
    id
    status
    attemptCount
    nextAttemptAt
  }
}
`,
    variables: vars({ id: 'paste a delivery id from WebhookDeliveries' }),
  },
  {
    name: 'RotateWebhookSecret',
    description: 'New signing secret; the old one keeps signing for an hour',
    query: `mutation RotateWebhookSecret($id: ID!, $gracePeriodSeconds: Int = 3600) {
  rotateWebhookSecret(id: $id, gracePeriodSeconds: $gracePeriodSeconds) {
    secret
    previousSecretExpiresAt
  }
}
`,
    variables: vars({ id: ENDPOINT_ID, gracePeriodSeconds: 3600 }),
  },
  {
    name: 'WebhookDelivered',
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
    variables: vars({ id: ENDPOINT_ID }),
  },
];

const USAGE = [
  {
    name: 'UsageSummary',
    description: 'Calls, errors, latency and quota units over a period',
    query: `query UsageSummary($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) {
  usage(period: $period, keyId: $keyId) {
    start
    end
    stats {
      calls
      errors
      limitedCalls
      successRate
      avgLatencyMs
      p95LatencyMs
      bandwidthBytes
      quotaUnits
    }
  }
}
`,
    variables: vars({ period: 'LAST_7_DAYS' }),
  },
  {
    name: 'UsageHistory',
    description: 'Hour-by-hour calls and errors over the last day',
    query: `query UsageHistory($start: DateTime!, $end: DateTime!, $granularity: UsageGranularity! = HOUR) {
  usageHistory(start: $start, end: $end, granularity: $granularity) {
    start
    stats { calls errors avgLatencyMs }
  }
}
`,
    variables: vars({ ...lastDay(), granularity: 'HOUR' }),
  },
  {
    name: 'UsageBreakdown',
    description: 'Usage by key and by operation, and the status codes returned',
    query: `query UsageBreakdown($period: UsagePeriod! = CURRENT_MONTH, $limit: Int! = 10) {
  usageByKey(period: $period) {
    keyId
    apiKey { name maskedKey }
    stats { calls errors }
  }
  topEndpoints(period: $period, limit: $limit) {
    operation
    stats { calls errors p95LatencyMs }
  }
  errorBreakdown(period: $period) { status calls share }
}
`,
    variables: vars({ period: 'LAST_30_DAYS', limit: 10 }),
  },
  {
    name: 'RequestLogs',
    description: 'The latest requests, optionally only one status code',
    query: `query RequestLogs($first: Int!, $status: Int, $keyId: ID) {
  requestLogs(first: $first, status: $status, keyId: $keyId) {
    occurredAt
    keyId
    source
    operation
    status
    latencyMs
  }
}
`,
    variables: vars({ first: 20 }),
  },
  {
    name: 'RateLimitsAndQuota',
    description: 'Rate-limit windows right now and the month projected to its end',
    query: `query RateLimitsAndQuota {
  rateLimitStatus {
    policy
    source
    windows { name limit remaining resetAt }
    monthlyQuota { limit used remaining resetAt }
    degraded
  }
  usageForecast {
    calls
    projectedCalls
    monthlyQuota
    projectedPercentOfQuota
    quotaExhaustedAt
  }
}
`,
  },
  {
    name: 'Alerts',
    description: 'Open and acknowledged usage alerts',
    query: `query Alerts($status: [AlertStatus!], $first: Int) {
  alerts(status: $status, first: $first) {
    totalCount
    nodes { id kind severity status title occurrences triggeredAt lastSeenAt }
  }
}
`,
    variables: vars({ status: ['OPEN', 'ACKNOWLEDGED'], first: 20 }),
  },
  {
    name: 'AcknowledgeAlert',
    description: 'Mark an alert as seen',
    query: `mutation AcknowledgeAlert($id: ID!) {
  acknowledgeAlert(id: $id) {
    id
    status
    acknowledgedAt
  }
}
`,
    variables: vars({ id: 'paste an alert id from Alerts' }),
  },
  {
    name: 'UsageThresholdReached',
    description: 'Live notice when the monthly quota passes a percentage (graphql-transport-ws)',
    query: `subscription UsageThresholdReached($threshold: Int!) {
  usageThresholdReached(threshold: $threshold) {
    type
    percent
    used
    quota
    occurredAt
  }
}
`,
    variables: vars({ threshold: 80 }),
  },
];

const APPS = [
  {
    name: 'Marketplace',
    description: 'Search published apps',
    query: `query Marketplace($search: String, $category: AppCategory, $sort: MarketplaceSort, $first: Int) {
  marketplaceApps(search: $search, category: $category, sort: $sort, first: $first) {
    totalCount
    nodes {
      id
      slug
      name
      description
      category
      rating
      reviewCount
      installCount
      pricing { model amount currency }
      developer { name }
    }
  }
}
`,
    variables: vars({ sort: 'POPULAR', first: 20 }),
  },
  {
    name: 'AppBySlug',
    description: 'One app with its latest reviews',
    query: `query AppBySlug($slug: String!) {
  app(slug: $slug) {
    id
    name
    version
    status
    longDescription
    requestedScopes
    features
    docsUrl
    reviews(first: 5) {
      nodes { rating comment reviewerName createdAt }
    }
  }
}
`,
    variables: vars({ slug: 'paste an app slug from Marketplace' }),
  },
  {
    name: 'MyApps',
    description: "Your organization's apps, whatever their status",
    query: `query MyApps($status: AppStatus, $first: Int) {
  myApps(status: $status, first: $first) {
    totalCount
    nodes { id slug name status version reviewReason submittedAt publishedAt }
  }
}
`,
    variables: vars({ first: 20 }),
  },
  {
    name: 'CreateApp',
    description: 'Register an OAuth app (the client secret is shown once)',
    query: `mutation CreateApp($input: CreateAppInput!) {
  createApp(input: $input) {
    clientSecret
    app {
      id
      slug
      status
      oauthConfig { clientId clientType redirectUris }
    }
  }
}
`,
    variables: vars({
      input: {
        name: 'Key Auditor',
        description: 'Reports unused API keys',
        category: 'SECURITY',
        requestedScopes: ['keys:read'],
        redirectUris: ['https://example.com/oauth/callback'],
        pricing: { model: 'FREE' },
      },
    }),
  },
  {
    name: 'SubmitApp',
    description: 'Send a draft app to review for the marketplace',
    query: `mutation SubmitApp($id: ID!) {
  submitApp(id: $id) {
    id
    status
    submittedAt
  }
}
`,
    variables: vars({ id: APP_ID }),
  },
  {
    name: 'AppAnalytics',
    description: 'Installs, API calls and ratings of one of your apps',
    query: `query AppAnalytics($id: ID!, $period: UsagePeriod!) {
  app(id: $id) {
    name
    analytics(period: $period) {
      installs
      uninstalls
      activeInstallations
      apiCalls
      apiErrors
      rating
      newReviews
    }
  }
}
`,
    variables: vars({ id: APP_ID, period: 'LAST_30_DAYS' }),
  },
  {
    name: 'InstalledApps',
    description: 'Apps installed in this organization and the scopes they hold',
    query: `query InstalledApps {
  installedApps {
    id
    scopes
    createdAt
    app { name slug developer { name } }
  }
}
`,
  },
  {
    name: 'SubmitAppReview',
    description: 'Rate an app 1–5 (again to change your review)',
    query: `mutation SubmitAppReview($appId: ID!, $rating: Int!, $comment: String) {
  submitAppReview(appId: $appId, rating: $rating, comment: $comment) {
    created
    review { id rating comment createdAt }
  }
}
`,
    variables: vars({ appId: APP_ID, rating: 5, comment: 'Does what it says.' }),
  },
];

const BILLING = [
  {
    name: 'Plans',
    description: 'Every plan with its price and limits',
    query: `query Plans {
  plans {
    id
    slug
    name
    monthlyPrice { amount currency }
    annualPrice { amount currency }
    monthlyQuota
    perMinute
    maxApiKeys
    maxWebhookEndpoints
  }
}
`,
  },
  {
    name: 'CurrentSubscription',
    description: 'Plan, cycle, renewal date and any scheduled change',
    query: `query CurrentSubscription {
  subscription {
    id
    status
    billingCycle
    currentPeriodEnd
    cancelAtPeriodEnd
    plan { name }
    scheduledChange { plan { name } billingCycle effectiveAt cancels }
    spendCap { amount currency }
  }
}
`,
  },
  {
    name: 'PreviewPlanChange',
    description: 'What a plan change would cost (changes nothing)',
    query: `query PreviewPlanChange($planId: ID!, $billingCycle: BillingCycle! = MONTHLY) {
  previewSubscriptionChange(planId: $planId, billingCycle: $billingCycle) {
    immediate
    effectiveAt
    total { amount currency }
    lines { description quantity amount { amount currency } }
  }
}
`,
    variables: vars({ planId: PLAN_ID, billingCycle: 'MONTHLY' }),
  },
  {
    name: 'ChangePlan',
    description: 'Upgrade (prorated, charged now) or downgrade (at the period end)',
    query: `mutation ChangePlan($planId: ID!, $billingCycle: BillingCycle! = MONTHLY) {
  changeSubscription(planId: $planId, billingCycle: $billingCycle) {
    subscription { status billingCycle plan { name } scheduledChange { effectiveAt } }
    invoice { id status total { amount currency } }
  }
}
`,
    variables: vars({ planId: PLAN_ID, billingCycle: 'MONTHLY' }),
  },
  {
    name: 'UpcomingInvoice',
    description: 'The invoice so far this period, its forecast and metered usage',
    query: `query UpcomingInvoice {
  upcomingInvoice {
    periodStart
    periodEnd
    total { amount currency }
    forecastTotal { amount currency }
    lines { kind description quantity amount { amount currency } }
  }
  billableUsage {
    metric { code name }
    value
    amount { amount currency }
  }
}
`,
  },
  {
    name: 'Invoices',
    description: 'Past invoices, optionally only one status',
    query: `query Invoices($status: InvoiceStatus, $first: Int) {
  invoices(status: $status, first: $first) {
    totalCount
    nodes {
      id
      number
      status
      total { amount currency }
      amountDue { amount currency }
      periodStart
      periodEnd
      dueAt
      paidAt
    }
  }
}
`,
    variables: vars({ first: 20 }),
  },
  {
    name: 'PaymentMethods',
    description: 'Cards on file',
    query: `query PaymentMethods {
  paymentMethods { id brand last4 expMonth expYear isDefault }
}
`,
  },
  {
    name: 'AddPaymentMethod',
    description: 'Attach a test card (4000 0000 0000 0002 is declined)',
    query: `mutation AddPaymentMethod($input: AddPaymentMethodInput!) {
  addPaymentMethod(input: $input) {
    id
    brand
    last4
    isDefault
  }
}
`,
    variables: vars({
      input: { number: '4242 4242 4242 4242', expMonth: 12, expYear: 2030, cvc: '123', makeDefault: true },
    }),
  },
  {
    name: 'PayInvoice',
    description: 'Charge an open invoice to a card (default card when none is given)',
    query: `mutation PayInvoice($invoiceId: ID!, $paymentMethodId: ID) {
  payInvoice(invoiceId: $invoiceId, paymentMethodId: $paymentMethodId) {
    invoice { id status amountDue { amount currency } }
    payment { id status failureCode amount { amount currency } }
  }
}
`,
    variables: vars({ invoiceId: INVOICE_ID }),
  },
  {
    name: 'SetSpendCap',
    description: 'Most to pay for overage a month, in minor units (null removes the cap)',
    query: `mutation SetSpendCap($amount: Int) {
  setSpendCap(amount: $amount) {
    spendCap { amount currency }
  }
}
`,
    variables: vars({ amount: 50000 }),
  },
];

/** The saved collections, in the order the picker shows them. */
export const COLLECTIONS = [
  { id: 'keys', name: 'API keys', description: 'Sign-up, sessions and the API-key lifecycle', operations: KEYS },
  { id: 'webhooks', name: 'Webhooks', description: 'Event catalog, endpoints and deliveries', operations: WEBHOOKS },
  { id: 'usage', name: 'Usage', description: 'Analytics, request logs, rate limits and alerts', operations: USAGE },
  { id: 'apps', name: 'Apps', description: 'Marketplace and your OAuth apps', operations: APPS },
  { id: 'billing', name: 'Billing', description: 'Plans, subscription, invoices and cards', operations: BILLING },
];

/** Every entry of every collection, with `group` (its collection's name) and `collection` (its id).
 * Names are unique across collections. */
export const SAMPLES = COLLECTIONS.flatMap((c) =>
  c.operations.map((op) => ({ ...op, group: c.name, collection: c.id })),
);

export const groupOf = (sample) => sample.group;

/** GraphiQL `defaultTabs` (the key lifecycle): used only when the browser has no saved tabs yet. */
const DEFAULT_TAB_NAMES = ['Register', 'Login', 'Viewer', 'CreateKey', 'ListKeys', 'RollKey', 'RevokeKey', 'Events'];
export const DEFAULT_TABS = DEFAULT_TAB_NAMES.map((name) => SAMPLES.find((s) => s.name === name)).map(
  ({ query, variables }) => ({ query, variables: variables ?? null }),
);
