// The REST API reference at /api/v1/docs: Swagger UI over the server's own OpenAPI document.
// Everything is bundled (no CDN, no validator badge), so it works offline.
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

// /api/v1/docs shows the v1 document, /api/v2/docs the v2 one.
const version = window.location.pathname.startsWith('/api/v2') ? 'v2' : 'v1';

SwaggerUIBundle({
  url: `/api/${version}/openapi.json`,
  dom_id: '#docs',
  deepLinking: true,
  // The online validator would send the document elsewhere.
  validatorUrl: null,
  displayOperationId: true,
  defaultModelsExpandDepth: 0,
  persistAuthorization: false,
  tryItOutEnabled: false,
});
