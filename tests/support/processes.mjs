// Shared by the Node script tests. Importing it:
// - stops the processes a script started (`track(proc)`) on every way out of the script: the
//   normal end, an uncaught error, SIGTERM/SIGINT/SIGHUP, and its own deadline (`deadline()`);
// - makes `localhost` resolve as Node 18 does on a stock Debian 12: ::1 first, and no second
//   try on 127.0.0.1 (Node 20 would try both), so a test that names `localhost` while its
//   server listens on 127.0.0.1 only fails here too. Tests connect to the address their
//   server printed.
import dns from 'node:dns';
import net from 'node:net';
import { constants } from 'node:os';

const live = new Set();

/// Registers a child process (from child_process.spawn) to be killed if the script ends
/// while it still runs; returns it.
export function track(proc) {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL'); // only the processes this script started
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    console.log(`FAIL interrupted by ${signal}: stopping what this test started`);
    process.exit(128 + constants.signals[signal]); // runs the 'exit' handler above
  });
}

/// Fails the script (and so stops its processes) if it has not ended within `seconds`.
export function deadline(seconds, script) {
  setTimeout(() => {
    console.log(`FAIL ${script}: not finished within ${seconds} s`);
    process.exit(1);
  }, seconds * 1000).unref();
}

try {
  dns.setDefaultResultOrder('ipv6first'); // Node 20.13+
} catch {
  dns.setDefaultResultOrder('verbatim'); // Node 18: the resolver's order, ::1 first on Debian
}
net.setDefaultAutoSelectFamily?.(false); // Node 18.18+; the default before Node 20

/// The environment for Chromium: this one without a preloaded libnss_wrapper (the guard's
/// ::1-first `localhost`), under which Chromium does not exit when Playwright closes it.
/// Chromium resolves `localhost` by itself anyway, to both loopback addresses.
export function browserEnv() {
  const env = { ...process.env };
  if (env.NSS_WRAPPER_HOSTS) {
    env.LD_PRELOAD = (env.LD_PRELOAD ?? '').split(/[\s:]+/).filter((lib) => lib && !lib.includes('nss_wrapper')).join(' ');
    delete env.NSS_WRAPPER_HOSTS;
  }
  return env;
}
