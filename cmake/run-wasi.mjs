// run-wasi.mjs - run a WASI preview1 command module under node:wasi (the CTest emulator of build-wasi).
//   node --no-warnings --single-threaded cmake/run-wasi.mjs module.wasm [args...]
// (--single-threaded: see cmake/wasi-toolchain.cmake; without it node 20 crashes intermittently)
// The exit code of the module is passed through. stdin/stdout/stderr are the process's.
// Known node 20.20 problem: after some long runs (embedtune train with checkpoints) node itself
// crashes (SIGSEGV/SIGBUS/TypeError) AFTER the module has finished; see wasm/README.md.
//
// Files: the host directory ET_WASI_ROOT (default "/", the whole host filesystem) is preopened as
// "/", and the module starts in the host's current directory (ET_WASI_CWD, passed to the module's
// own chdir() by wasm/wasi_cwd.c), so relative paths like tests/fixtures/... and absolute host
// paths both mean what they mean natively. For untrusted use, set ET_WASI_ROOT to the data directory.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import path from 'node:path';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node --no-warnings run-wasi.mjs module.wasm [args...]\n');
  process.exit(2);
}
const root = path.resolve(process.env.ET_WASI_ROOT || '/');
const cwd = process.cwd();
let guestCwd = '/';
if (cwd === root) guestCwd = '/';
else if (cwd.startsWith(root === '/' ? '/' : root + '/')) guestCwd = '/' + path.relative(root, cwd).split(path.sep).join('/');
const env = { ...process.env, ET_WASI_CWD: guestCwd };
const wasi = new WASI({ version: 'preview1', args: [path.basename(file), ...args], env,
                        preopens: { '/': root }, returnOnExit: true });
const mod = await WebAssembly.compile(await readFile(file));
const inst = await WebAssembly.instantiate(mod, wasi.getImportObject());
process.exitCode = wasi.start(inst);
