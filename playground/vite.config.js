import { defineConfig } from 'vite';

// The Rust server serves the built files under /playground/, so every asset URL
// is emitted with that prefix (docs.html is served at /api/v1/docs and loads them from there). `vite build --outDir <dir> --emptyOutDir` on the
// command line overrides `build.outDir` below (the Rust build uses that).
// Development only (`npx vite`, `npx vite preview`): proxy the API to a running Gantry
// (GANTRY_API, default http://127.0.0.1:18700) so the page can talk to it same-origin.
// `vite preview` also sends the server's Content-Security-Policy, to catch violations early.
const GANTRY_API = process.env.GANTRY_API || 'http://127.0.0.1:18700';
const devProxy = {
  '/graphql': { target: GANTRY_API, ws: true, changeOrigin: true },
  '/api': { target: GANTRY_API, changeOrigin: true },
};
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "font-src 'self' data:; connect-src 'self' ws: wss:; worker-src 'self' blob:";

export default defineConfig({
  base: '/playground/',
  server: { proxy: devProxy },
  preview: { proxy: devProxy, headers: { 'Content-Security-Policy': CSP } },
  // JSX in src/*.jsx is compiled by Vite's built-in transformer (Oxc in Vite 8)
  // with the automatic runtime; no React plugin is needed for a production build.
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'react' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // GraphiQL + CodeMirror + React is a large bundle by nature.
    chunkSizeWarningLimit: 4096,
    // No inline <script> bootstraps; everything is a file under assets/.
    modulePreload: { polyfill: false },
    rolldownOptions: {
      // Two pages: the playground (index.html) and the REST API reference (docs.html).
      input: { main: 'index.html', docs: 'docs.html' },
      onwarn(warning, warn) {
        // Radix UI ships "use client" directives (meaningless here).
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
});
