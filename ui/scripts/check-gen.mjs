// `npm run check-gen`: regenerates the protobuf code from ../proto into a
// temporary directory and compares it with the committed src/gen/.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");
const tmp = mkdtempSync(join(tmpdir(), "logtap-gen-"));
const files = (dir) => {
  const out = [];
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      statSync(p).isDirectory() ? walk(p) : out.push(relative(dir, p));
    }
  };
  try {
    walk(dir);
  } catch {
    /* missing */
  }
  return out.sort();
};
try {
  const bin = join(ui, "node_modules/.bin");
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const r = spawnSync(join(bin, "buf"), ["generate", "../proto", "--template", "buf.gen.yaml", "--path", "../proto/logtap/v1/logtap.proto", "-o", tmp], { cwd: ui, stdio: "inherit", env });
  if (r.status !== 0) process.exit(1);
  const fresh = join(tmp, "src/gen");
  const have = join(ui, "src/gen");
  const a = files(fresh);
  const b = files(have);
  const bad = [...a.filter((f) => !b.includes(f) || !readFileSync(join(fresh, f)).equals(readFileSync(join(have, f)))), ...b.filter((f) => !a.includes(f))];
  if (bad.length) {
    console.error(`check-gen: src/gen differs from the .proto: ${bad.join(", ")}\nRun \`npm run generate\` in ui/ and commit src/gen.`);
    process.exit(1);
  }
  console.log(`check-gen: src/gen matches ../proto (${a.join(", ")})`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
