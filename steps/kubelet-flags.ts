import { KubeletLayoutError } from './kubelet-errors.js';
import { findLast, type ArgumentSource, type KubeletArgument } from './kubelet-env.js';

/** One flag on the kubelet's command line. */
export interface KubeletFlag {
  /** The name without dashes, such as `hostname-override`. */
  name: string;
  /** The value, or undefined for a boolean flag given without `=value`, which means true. */
  value: string | undefined;
  source: ArgumentSource;
}

/**
 * Boolean flags of the kubelet and of klog. pflag never takes the next word as the value
 * of a boolean flag, so `--flag false` is a flag and a stray argument.
 * NOTE: this list is not generated from the kubelet's `--help`. A boolean flag missing
 * here is read like a string flag, which matters only when the next word lacks a `-`.
 */
const BOOLEAN_FLAGS = new Set([
  'add-dir-header',
  'alsologtostderr',
  'anonymous-auth',
  'authentication-token-webhook',
  'cgroups-per-qos',
  'enable-controller-attach-detach',
  'enable-debugging-handlers',
  'enable-load-reader',
  'enable-server',
  'exit-on-lock-contention',
  'fail-cgroupv1',
  'fail-swap-on',
  'help',
  'keep-terminated-pod-volumes',
  'kernel-memcg-notification',
  'local-storage-capacity-isolation',
  'log-flush-frequency-immediate',
  'logtostderr',
  'make-iptables-util-chains',
  'one-output',
  'protect-kernel-defaults',
  'register-node',
  'register-schedulable',
  'rotate-certificates',
  'rotate-server-certificates',
  'seccomp-default',
  'serialize-image-pulls',
  'skip-headers',
  'skip-log-headers',
  'version',
]);

/** Single-letter flags of the kubelet: `-v` (log level) and `-h` (help). */
const SHORTHANDS: Record<string, string> = { v: 'v', h: 'help' };

/**
 * Reads the kubelet's flags the way pflag does: `--name=value`, `--name value` for
 * non-boolean flags, a bare boolean `--name`, `-v=2`, `-v 2` or `-v2`, and `--` ending
 * the flags. The kubelet accepts no other arguments, so any other word is a layout error
 * that names where it comes from. A flag given twice appears twice, and the kubelet uses
 * the last. A string flag followed directly by another flag is read as having no value,
 * where pflag would take that flag as the value.
 */
export function parseKubeletArgs(args: readonly KubeletArgument[]): KubeletFlag[] {
  const flags: KubeletFlag[] = [];

  for (let i = 0; i < args.length; i++) {
    const { text, source } = args[i];
    if (text === '--') {
      if (i + 1 < args.length) {
        throw strayArgument(args[i + 1]);
      }
      break;
    }

    const long = /^--([^=]+)(?:=(.*))?$/s.exec(text);
    const short = /^-([A-Za-z])(?:=?(.+))?$/s.exec(text);
    if (long === null && short === null) {
      throw strayArgument(args[i]);
    }

    const name = long !== null ? long[1] : SHORTHANDS[short![1]] ?? short![1];
    let value = long !== null ? long[2] : short![2];
    if (value === undefined && !BOOLEAN_FLAGS.has(name)) {
      const next = args[i + 1];
      if (next !== undefined && !next.text.startsWith('-')) {
        value = next.text;
        i++;
      }
    }
    flags.push({ name, value, source });
  }
  return flags;
}

/** Returns the flag the kubelet uses when `name` is given several times: the last. */
export function findFlag(flags: readonly KubeletFlag[], name: string): KubeletFlag | undefined {
  return findLast(flags, (flag) => flag.name === name);
}

/** Describes where an argument comes from, for messages. */
export function describeSource(source: ArgumentSource): string {
  switch (source.kind) {
    case 'exec-start':
      return `ExecStart= in ${source.file} line ${source.line}`;
    case 'environment':
      return `variable ${source.variable} set by Environment= in ${source.file} line ${source.line}`;
    case 'environment-file':
      return `variable ${source.variable} in ${source.file} line ${source.line}`;
  }
}

function strayArgument(argument: KubeletArgument): KubeletLayoutError {
  return new KubeletLayoutError(
    argument.source.file,
    `the kubelet's command line has the argument ${JSON.stringify(argument.text)}, which is not a flag (from ${describeSource(argument.source)}); the kubelet accepts only flags, so fix or remove it`,
  );
}
