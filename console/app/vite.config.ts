import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

/*
 * The operator console's page, built into static files the console server serves (`dist/`). Why
 * this stack: Preact is 4 KB and React-compatible, so the page stays small and plain; Vite is
 * already the bundler under the project's test tool (vitest), so it adds nothing new to learn;
 * elkjs is the standard layered layout for nested graphs, which a statechart is. Everything is
 * bundled at build time: the page fetches nothing from the internet (no CDN, no web fonts), so it
 * works on an air-gapped operator's machine.
 */
export default defineConfig({
  root: decodeURIComponent(new URL('.', import.meta.url).pathname),
  // Relative asset URLs: the server may serve the page under any prefix.
  base: './',
  plugins: [preact({ prerender: { enabled: false } })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // elkjs is one ~1.4 MB chunk, loaded only when a session's statechart is drawn.
    chunkSizeWarningLimit: 1600,
  },
});
