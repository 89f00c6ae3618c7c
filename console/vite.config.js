import { defineConfig } from 'vite';

// Gantry serves the built files under /console/ (assets under /console/assets/, every other
// /console/* path without a dot answers index.html so history routing works).
// `vite build --outDir <dir> --emptyOutDir` on the command line overrides `build.outDir` (the
// Rust build uses that).
//
// `npm run dev` / `npm run preview` proxy the API to a running Gantry (GANTRY_API, default
// http://127.0.0.1:18500) so the page and the API are same-origin, as they are when Gantry serves
// the console itself. `preview` also sends the CSP Gantry sends, so a violation shows up in tests.
const API = process.env.GANTRY_API || 'http://127.0.0.1:18500';
const proxy = {
  '/graphql': { target: API, ws: true, changeOrigin: false },
  '/api': { target: API, changeOrigin: false },
  '/oauth': { target: API, changeOrigin: false },
};
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data: blob:; connect-src 'self' ws: wss:";

export default defineConfig({
  base: '/console/',
  // JSX in src/*.jsx is compiled by Vite's built-in transformer (Oxc) with the automatic
  // runtime; no React plugin is needed.
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'react' },
  },
  server: { proxy },
  preview: { proxy, headers: { 'Content-Security-Policy': CSP } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // No inline <script> bootstraps; everything is a file under assets/.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 600,
  },
});
