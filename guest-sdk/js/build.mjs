#!/usr/bin/env node
// Builds JavaScript (or TypeScript) wasm-reconciler plugins into WebAssembly components.
//
//   node guest-sdk/js/build.mjs --out DIR [PLUGIN_DIR ...]
//
// PLUGIN_DIR is a directory with a package.json whose `main` is the module that default-exports
// the reconciler (default: this repository's plugins/myresource-js). Each plugin is written to
// DIR/<name>.wasm, its package name with `-` turned into `_` (myresource-js -> myresource_js.wasm),
// through a temporary file and a rename, so a host watching DIR never sees half a file.
//
// On the first run (or after package-lock.json changes) it runs `npm ci` in this package's
// directory: a fresh machine needs only Node.js 20+ and access to the npm registry. Then, for
// each plugin, it bundles the reconciler, the SDK and the component glue into one ES module
// (rolldown; the `wasm-reconciler:plugin/*` imports stay external) and componentizes it with
// componentize-js (StarlingMonkey) against the world `reconciler` in ../../wit/0.1.0, with every WASI
// feature disabled: the component imports nothing but the host's own interfaces.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SDK_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_DIR = resolve(SDK_DIR, '..', '..');
/** Every WASI-backed feature componentize-js offers; none is needed by a reconciler. */
const DISABLED_FEATURES = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];
const WORLD = 'reconciler';

const USAGE = `usage: node build.mjs --out DIR [--wit DIR] [PLUGIN_DIR ...]

Builds each plugin directory (default: ${join(REPO_DIR, 'plugins', 'myresource-js')}) into
DIR/<package name with - as _>.wasm.

  --out DIR   where to write the components (created if missing)
  --wit DIR   the WIT package (default: ${join(REPO_DIR, 'wit', '0.1.0')})
  -h, --help  this text`;

async function main() {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        wit: { type: 'string', default: join(REPO_DIR, 'wit', '0.1.0') },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    fail(`${error.message}\n\n${USAGE}`);
  }
  if (args.values.help) {
    console.log(USAGE);
    return;
  }
  if (!args.values.out) fail(`--out DIR is required\n\n${USAGE}`);
  const outDir = resolve(args.values.out);
  const witDir = resolve(args.values.wit);
  const plugins = args.positionals.length > 0 ? args.positionals.map((p) => resolve(p)) : [join(REPO_DIR, 'plugins', 'myresource-js')];

  ensureDependencies();
  await mkdir(outDir, { recursive: true });
  for (const pluginDir of plugins) {
    const started = Date.now();
    const out = await buildPlugin(pluginDir, witDir, outDir);
    const { size } = statSync(out);
    console.log(`built ${out} (${(size / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

/** Runs `npm ci` here unless node_modules matches package-lock.json already. */
function ensureDependencies() {
  const lock = join(SDK_DIR, 'package-lock.json');
  const installed = join(SDK_DIR, 'node_modules', '.package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  console.log(`installing the build tools: npm ci in ${SDK_DIR}`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: SDK_DIR, stdio: 'inherit' });
  if (result.status !== 0) fail(`npm ci failed in ${SDK_DIR}${result.error ? `: ${result.error.message}` : ''}`);
}

/**
 * Builds one plugin directory into OUT_DIR/<name>.wasm and returns that path.
 *
 * @param {string} pluginDir
 * @param {string} witDir
 * @param {string} outDir
 */
async function buildPlugin(pluginDir, witDir, outDir) {
  const manifestPath = join(pluginDir, 'package.json');
  let manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    fail(`cannot read ${manifestPath}: ${error.message}`);
  }
  if (typeof manifest.name !== 'string' || manifest.name === '') fail(`${manifestPath} has no name`);
  const entry = resolve(pluginDir, manifest.main ?? 'src/index.js');
  if (!existsSync(entry)) fail(`${manifestPath}: its main module ${entry} does not exist`);
  const fileName = `${basename(manifest.name).replace(/-/g, '_')}.wasm`;

  const source = await bundle(entry);
  const { componentize } = await import('@bytecodealliance/componentize-js');
  const { component, imports } = await componentize(source, {
    sourceName: fileName.replace(/\.wasm$/, '.js'),
    witPath: witDir,
    worldName: WORLD,
    disableFeatures: DISABLED_FEATURES,
  });
  // With every feature disabled the engine needs no WASI at all; say so if that ever changes.
  const wasi = (imports ?? []).map((i) => (Array.isArray(i) ? i[0] : String(i))).filter((name) => name.startsWith('wasi:'));
  if (wasi.length > 0) console.warn(`warning: ${fileName} imports WASI interfaces the host grants nothing through: ${[...new Set(wasi)].join(', ')}`);

  const out = join(outDir, fileName);
  const partial = join(outDir, `.${fileName}.tmp`);
  await writeFile(partial, component);
  await rename(partial, out);
  return out;
}

/**
 * One ES module: the component's exports around the plugin's default export, with the SDK and
 * everything the plugin imports inlined. `wasm-reconciler-sdk` resolves to this package, so a
 * plugin builds without its own node_modules.
 *
 * @param {string} entry
 * @returns {Promise<string>}
 */
async function bundle(entry) {
  const { rolldown } = await import('rolldown');
  const work = await mkdtemp(join(tmpdir(), 'wasm-reconciler-js-'));
  try {
    const wrapper = join(work, 'component-entry.js');
    await writeFile(
      wrapper,
      [
        `import reconciler from ${JSON.stringify(entry)};`,
        `import { exportReconciler } from ${JSON.stringify(join(SDK_DIR, 'src', 'component.js'))};`,
        'const plugin = exportReconciler(reconciler);',
        'export function metadata() { return plugin.metadata(); }',
        'export function reconcile(request) { return plugin.reconcile(request); }',
        '',
      ].join('\n'),
    );
    const build = await rolldown({
      input: wrapper,
      platform: 'neutral',
      external: [/^wasm-reconciler:/, /^wasi:/],
      resolve: {
        alias: {
          'wasm-reconciler-sdk/testkit': join(SDK_DIR, 'src', 'testkit', 'index.js'),
          'wasm-reconciler-sdk': join(SDK_DIR, 'src', 'index.js'),
        },
      },
      onLog(level, log) {
        if (level === 'warn') console.warn(`warning: ${log.message}`);
      },
    });
    const { output } = await build.generate({ format: 'esm' });
    await build.close();
    if (output.length !== 1) fail(`bundling ${entry} gave ${output.length} chunks; dynamic import() is not supported in a component`);
    return output[0].code;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

await main();
