// Shared by the wss:// scripts: a dev certificate (tools/dev-cert.sh) in a temporary directory
// and an example server started on it with --tls-cert/--tls-key.
import { execFileSync, spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { track } from '../support/processes.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Makes the certificate; returns { dir, cert, key, ca (the PEM text), cleanup }. */
export function devCert() {
  const dir = mkdtempSync(join(tmpdir(), 'wschat-tls-'));
  execFileSync('bash', [join(root, 'tools', 'dev-cert.sh'), dir], { stdio: 'ignore' });
  const cert = join(dir, 'cert.pem');
  return { dir, cert, key: join(dir, 'key.pem'), ca: readFileSync(cert), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Where a client of `localhost` connects first (::1 on a stock Debian 12). */
export async function localhostAddress() {
  return (await lookup('localhost')).address;
}

/**
 * Starts `path` over TLS on `address`; resolves to { proc, host, port, stop() } once it
 * announces wss:// (`host` as printed: `[::1]` for IPv6). stop() sends SIGTERM and resolves to
 * the exit status (or the signal's name); it may be called again. The process is killed if the
 * script ends first.
 */
export function startTls(path, tls, address = '127.0.0.1') {
  const proc = track(spawn(path, ['--address', address, '--port', '0', '--tls-cert', tls.cert, '--tls-key', tls.key], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const exited = new Promise((done) => proc.once('exit', (code, signal) => done(code ?? signal)));
  const stop = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return exited;
  };
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`${path} did not announce wss:// in 10 s`), 10000);
    const early = (code) => fail(`${path} exited with ${code}`);
    proc.once('exit', early);
    createInterface({ input: proc.stdout }).once('line', (line) => {
      const m = /^listening on wss:\/\/(\[[0-9a-f:.]+\]|[0-9.]+):(\d+)\/$/.exec(line);
      if (!m) return fail(`unexpected announcement: ${line}`);
      clearTimeout(timer);
      proc.off('exit', early);
      resolve({ proc, host: m[1], port: Number(m[2]), stop });
    });
  });
}

/** PASS/FAIL lines and a final verdict. */
export function checker() {
  let failures = 0;
  return {
    check(ok, name, detail = '') {
      console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${ok ? '' : `: ${detail}`}`);
      if (!ok) failures++;
    },
    finish() {
      console.log(`${failures ? 'FAILED' : 'OK'}: ${failures} failure(s)`);
      process.exit(failures ? 1 : 0);
    },
  };
}

export function flag(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name} PATH`);
  return process.argv[i + 1];
}
