// Shared by the wss:// scripts: a dev certificate (tools/dev-cert.sh) in a temporary directory
// and an example server started on it with --tls-cert/--tls-key.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Makes the certificate; returns { dir, cert, key, ca (the PEM text), cleanup }. */
export function devCert() {
  const dir = mkdtempSync(join(tmpdir(), 'wschat-tls-'));
  execFileSync('bash', [join(root, 'tools', 'dev-cert.sh'), dir], { stdio: 'ignore' });
  const cert = join(dir, 'cert.pem');
  return { dir, cert, key: join(dir, 'key.pem'), ca: readFileSync(cert), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts `path` over TLS; resolves to { proc, port, stop() } once it announces wss://. */
export function startTls(path, tls) {
  const proc = spawn(path, ['--address', '127.0.0.1', '--port', '0', '--tls-cert', tls.cert, '--tls-key', tls.key], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path} did not announce wss:// in 10 s`)), 10000);
    proc.on('exit', (code) => reject(new Error(`${path} exited with ${code}`)));
    createInterface({ input: proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const m = /^listening on wss:\/\/127\.0\.0\.1:(\d+)\/$/.exec(line);
      if (!m) return reject(new Error(`unexpected announcement: ${line}`));
      const stop = () => new Promise((done) => { proc.removeAllListeners('exit'); proc.once('exit', (code) => done(code)); proc.kill('SIGTERM'); });
      resolve({ proc, port: Number(m[1]), stop });
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
