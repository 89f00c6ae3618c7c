// The REST API reference at /api/v1/docs: Swagger UI over the server's own OpenAPI document.
// Everything is bundled (no CDN, no validator badge), so it works offline.
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#docs',
  deepLinking: true,
  // The online validator would send the document elsewhere.
  validatorUrl: null,
  displayOperationId: true,
  defaultModelsExpandDepth: 0,
  persistAuthorization: false,
  tryItOutEnabled: false,
});
