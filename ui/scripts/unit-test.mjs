// `npm test`: compiles the unit tests (and the pure modules they import) with
// tsc into node_modules/.cache, then runs them with node's test runner.
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(ui, "node_modules/.cache/logtap-unit");
rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/lib/tsc.js");
const built = spawnSync(process.execPath, [tsc, "-p", join(ui, "tsconfig.test.json")], { stdio: "inherit", cwd: ui });
if (built.status !== 0) process.exit(built.status ?? 1);
const dir = join(out, "tests/unit");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.js"))
  .sort()
  .map((f) => join(dir, f));
const run = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit", cwd: ui });
process.exit(run.status ?? 1);
