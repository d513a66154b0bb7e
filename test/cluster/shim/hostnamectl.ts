// hostnamectl for the test hosts: reads and sets the host name of the
// host's UTS namespace and its /etc/hostname. Installed as
// /usr/bin/hostnamectl in each host's mount namespace.
//
// Supported: (no verb) or status, hostname [NAME], set-hostname NAME;
// --static, --transient and --pretty are accepted and treated alike.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { hostPath } from './service-state.js';

/** Host name rules of hostname(7): labels of letters, digits and hyphens, at most 64 characters. */
function validateHostname(name: string): void {
  if (name.length === 0 || name.length > 64 || !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
    throw new Error(`Invalid hostname '${name}': use letters, digits, hyphens and dots, at most 64 characters`);
  }
}

function setHostname(name: string): void {
  validateHostname(name);
  execFileSync('hostname', [name], { stdio: 'inherit' });
  writeFileSync(hostPath('/etc/hostname'), `${name}\n`);
}

function main(): number {
  const positional = process.argv.slice(2).filter((arg) => !['--static', '--transient', '--pretty', '--no-ask-password'].includes(arg));
  const unknown = positional.find((arg) => arg.startsWith('-'));
  if (unknown !== undefined) throw new Error(`unrecognized option '${unknown}'`);
  const [verb = 'status', name] = positional;
  switch (verb) {
    case 'status':
      process.stdout.write(` Static hostname: ${hostname()}\n Operating System: simulated kube-node-rename test host\n`);
      return 0;
    case 'hostname':
      if (name === undefined) process.stdout.write(`${hostname()}\n`);
      else setHostname(name);
      return 0;
    case 'set-hostname':
      if (name === undefined) throw new Error('set-hostname needs a host name');
      setHostname(name);
      return 0;
    default:
      throw new Error(`unknown command verb '${verb}'; this test host supports status, hostname and set-hostname`);
  }
}

try {
  process.exitCode = main();
} catch (error) {
  process.stderr.write(`hostnamectl: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
