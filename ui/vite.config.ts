// Builds the viewer into dist/ with fixed names (index.html, assets/app.js,
// assets/app.css), no hashes and no source maps: the files are committed and
// embedded in the logtap binary, and `npm run check-dist` rebuilds and diffs.
import { defineConfig } from "vite";

// `npm run dev` proxies the API to a running server (default the logtap default address).
const target = process.env.LOGTAP_SERVER ?? "http://127.0.0.1:50051";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    modulePreload: false,
    cssCodeSplit: false,
    reportCompressedSize: false,
    rolldownOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: (info) =>
          (info.names ?? []).some((n) => n.endsWith(".css")) ? "assets/app.css" : "assets/[name][extname]",
      },
    },
  },
  server: {
    proxy: {
      "/logtap.v1.": target,
      "/api/": target,
      "/metrics": target,
      "/healthz": target,
    },
  },
});
