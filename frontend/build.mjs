// Builds the PWA into dist/: hashed bundles, the app shell, and a service worker whose
// precache list and version come from this build. Run by `make -C frontend`.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";

const out = "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: "src/app.js", style: "src/styles.css" },
  bundle: true,
  splitting: true, // hls.js becomes its own chunk, loaded when a video first opens
  format: "esm",
  minify: true,
  target: ["es2020", "safari14"],
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
const version = createHash("sha256").update(JSON.stringify(precache)).digest("hex").slice(0, 12);
const sw = readFileSync("src/sw.js", "utf8")
  .replace("__VERSION__", version)
  .replace("__PRECACHE__", JSON.stringify(precache));
writeFileSync(join(out, "sw.js"), sw);
console.log(`built ${appJs} (${precache.length} precached files, version ${version})`);
