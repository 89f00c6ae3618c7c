import { defineConfig } from 'vite';

// The Rust server serves the built files under /playground/, so every asset URL
// is emitted with that prefix (docs.html is served at /api/v1/docs and loads them from there). `vite build --outDir <dir> --emptyOutDir` on the
// command line overrides `build.outDir` below (the Rust build uses that).
export default defineConfig({
  base: '/playground/',
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
