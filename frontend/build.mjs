// Builds the PWA into dist/: hashed bundles, the app shell, and a service worker whose
// precache list and version come from this build. Run by `make -C frontend`.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const FIRST_LOAD_BUDGET = 200 * 1024; // bytes, compressed (issue 5)

const out = "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: "src/app.js", style: "src/styles.css" },
  bundle: true,
  splitting: true, // hls.js becomes its own chunk, loaded when a video first opens
  format: "esm",
  minify: true,
  target: ["es2020", "chrome96", "safari15"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".png": "file", ".svg": "file" },
  metafile: true,
  legalComments: "none",
});

const outputs = Object.entries(result.metafile.outputs);
const entry = (name) => outputs.find(([, o]) => o.entryPoint && o.entryPoint.endsWith(name))[0];
const url = (path) => "/static/" + path.slice(out.length + 1);
const appJs = url(entry("src/app.js"));
const css = url(outputs.find(([path]) => path.endsWith(".css"))[0]);

for (const icon of readdirSync("src/icons")) copyFileSync(join("src/icons", icon), join(out, icon));
copyFileSync("src/manifest.webmanifest", join(out, "manifest.webmanifest"));

const shell = readFileSync("src/index.html", "utf8")
  .replace("{{APP_JS}}", appJs)
  .replace("{{APP_CSS}}", css);
writeFileSync(join(out, "index.html"), shell);

// Precache the shell and everything it loads at once; the video chunk waits for a video.
const hlsChunks = outputs
  .filter(([, o]) => Object.keys(o.inputs).some((i) => i.includes("node_modules/hls.js")))
  .map(([path]) => path);
const precache = [
  "/",
  "/manifest.webmanifest",
  ...readdirSync("src/icons").map((icon) => `/static/${icon}`),
  ...outputs
    .filter(([path]) => !path.endsWith(".map") && !hlsChunks.includes(path))
    .map(([path]) => url(path)),
];
// Its own scope, so its names never clash with the worker's.
const push = existsSync("src/sw-push.js") ? `\n(() => {\n${readFileSync("src/sw-push.js", "utf8")}\n})();\n` : "";
// The release changes with any byte the worker caches or runs, so browsers see every release.
const digest = createHash("sha256").update(readFileSync("src/sw.js")).update(push);
for (const path of [join(out, "index.html"), join(out, "manifest.webmanifest"), ...outputs.map(([p]) => p)])
  digest.update(readFileSync(path));
const version = digest.digest("hex").slice(0, 12);
const sw = readFileSync("src/sw.js", "utf8")
  .replace("__VERSION__", version)
  .replace("__PRECACHE__", JSON.stringify(precache));
writeFileSync(join(out, "sw.js"), sw + push);
console.log(`built ${appJs} (${precache.length} precached files, version ${version})`);

// What a first visit downloads before any plan image: the shell, every JS and CSS file but
// the video chunk, the service worker, the manifest and the icons it precaches.
const files = [
  join(out, "index.html"),
  join(out, "sw.js"),
  join(out, "manifest.webmanifest"),
  ...readdirSync("src/icons").map((icon) => join(out, icon)),
  ...outputs.map(([path]) => path).filter((path) => /\.(js|css)$/.test(path) && !hlsChunks.includes(path)),
];
const sizes = (path) => {
  const raw = readFileSync(path);
  return { raw: raw.length, gzip: gzipSync(raw, { level: 9 }).length, brotli: brotliCompressSync(raw).length };
};
// Whitenoise serves a file's .br or .gz beside it to browsers that accept them, so the
// compression is done once here, at the highest levels, and never per request.
const walk = (dir) => readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
for (const path of walk(out).filter((p) => /\.(js|css|html|webmanifest|svg|json)$/.test(p))) {
  const raw = readFileSync(path);
  writeFileSync(`${path}.gz`, gzipSync(raw, { level: 9 }));
  writeFileSync(`${path}.br`, brotliCompressSync(raw));
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const total = { raw: 0, gzip: 0, brotli: 0 };
for (const path of files) {
  const size = sizes(path);
  for (const key of Object.keys(total)) total[key] += size[key];
  console.log(`  ${path.padEnd(44)} ${kb(size.raw).padStart(9)} ${kb(size.gzip).padStart(9)} gzip`);
}
for (const path of hlsChunks) console.log(`  ${path.padEnd(44)} ${kb(sizes(path).gzip).padStart(19)} gzip (video, loaded on first use)`);
console.log(`first load: ${kb(total.raw)} raw, ${kb(total.gzip)} gzip, ${kb(total.brotli)} brotli (budget ${kb(FIRST_LOAD_BUDGET)})`);
if (total.gzip > FIRST_LOAD_BUDGET) {
  console.error("The first load is over budget: keep big libraries out of the shell (dynamic import()).");
  rmSync(join(out, "index.html")); // nothing half-built is served, and make tries again
  process.exit(1);
}
