// `npm run check-dist`: builds the viewer into a temporary directory and
// compares it with the committed dist/, file by file. Exits 1 on any
// difference (run `npm run build` and commit dist/ to fix).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(ui, "dist");
const tmp = mkdtempSync(join(tmpdir(), "logtap-dist-"));
const vite = join(dirname(createRequire(import.meta.url).resolve("vite/package.json")), "bin/vite.js");

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  try {
    walk(dir);
  } catch {
    /* missing */
  }
  return out.sort();
}

try {
  const b = spawnSync(process.execPath, [vite, "build", "--outDir", tmp, "--emptyOutDir", "--logLevel", "warn"], {
    cwd: ui,
    stdio: "inherit",
  });
  if (b.status !== 0) {
    console.error("check-dist: build failed");
    process.exit(1);
  }
  const want = files(tmp);
  const have = files(dist);
  const problems = [];
  for (const f of want) {
    if (!have.includes(f)) problems.push(`missing in dist/: ${f}`);
    else if (!readFileSync(join(tmp, f)).equals(readFileSync(join(dist, f)))) problems.push(`differs: dist/${f}`);
  }
  for (const f of have) if (!want.includes(f)) problems.push(`not produced by the build: dist/${f}`);
  if (problems.length) {
    console.error("check-dist: ui/dist is out of date with the sources:\n  " + problems.join("\n  "));
    console.error("Run `npm ci && npm run build` in ui/ and commit ui/dist.");
    process.exit(1);
  }
  console.log(`check-dist: ui/dist matches a fresh build (${want.length} files: ${want.join(", ")})`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
