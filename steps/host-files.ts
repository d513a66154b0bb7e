// File operations on a host, each one fixed script with its values passed as arguments.
import { X509Certificate } from 'node:crypto';
import type { HostRunner } from './host.js';

const ABSENT = 3;

/** Returns the file's content, or undefined when it does not exist. */
export async function readHostFile(host: HostRunner, path: string, signal?: AbortSignal): Promise<string | undefined> {
  const result = await host.script(`read ${path}`, 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi', [path], {
    okCodes: [0, ABSENT],
    ...(signal ? { signal } : {}),
  });
  return result.code === ABSENT ? undefined : result.stdout;
}

export async function hostPathExists(host: HostRunner, path: string): Promise<boolean> {
  const result = await host.script(`test -e ${path}`, '[ -e "$1" ] || [ -L "$1" ]', [path], { okCodes: [0, 1] });
  return result.code === 0;
}

/**
 * Replaces a file atomically (temporary file in the same folder, then rename). The content travels
 * on standard input, so it never shows in a process list or a log. A new file gets `mode`; an
 * existing file keeps its own mode unless `forceMode` is set.
 */
export async function writeHostFile(
  host: HostRunner,
  path: string,
  content: string,
  options: { mode: string; forceMode?: boolean },
): Promise<void> {
  const script = [
    'set -e',
    'umask 077',
    'dir=$(dirname -- "$1")',
    'mkdir -p -- "$dir"',
    'tmp="$1.kube-node-rename.$$"',
    'cat > "$tmp"',
    'if [ -e "$1" ] && [ "$3" != force ]; then chmod --reference="$1" -- "$tmp"; else chmod "$2" -- "$tmp"; fi',
    'mv -f -- "$tmp" "$1"',
  ].join('\n');
  await host.script(`write ${path}`, script, [path, options.mode, options.forceMode ? 'force' : 'keep'], { input: content });
}

/**
 * Copies a file into the backup folder, once: a later call keeps the first copy, which holds the
 * state before the tool changed anything. Returns the backup path, or undefined when the source
 * does not exist.
 */
export async function backupHostFile(host: HostRunner, path: string, backupDir: string): Promise<string | undefined> {
  const target = `${backupDir}/files${path}`;
  const script = [
    'set -e',
    '[ -e "$1" ] || exit 3',
    '[ -e "$2" ] && exit 0',
    'umask 077',
    'mkdir -p -- "$(dirname -- "$2")"',
    'cp -p -- "$1" "$2"',
  ].join('\n');
  const result = await host.script(`back up ${path}`, script, [path, target], { okCodes: [0, ABSENT] });
  return result.code === ABSENT ? undefined : target;
}

/**
 * Moves files (symbolic links as links) into a backup folder without overwriting anything there:
 * a name already taken gets a numeric suffix. Missing sources are skipped. Returns each moved
 * file with its place in the backup, so it can be moved back.
 */
export async function moveIntoBackup(host: HostRunner, backupDir: string, paths: string[]): Promise<MovedFile[]> {
  const script = [
    'set -e',
    'umask 077',
    'dest="$1"; shift',
    'mkdir -p -- "$dest"',
    'chmod 700 -- "$dest"',
    'for f in "$@"; do',
    '  if [ ! -e "$f" ] && [ ! -L "$f" ]; then continue; fi',
    '  base=$(basename -- "$f"); target="$dest/$base"; n=1',
    '  while [ -e "$target" ] || [ -L "$target" ]; do target="$dest/$base.$n"; n=$((n+1)); done',
    '  mv -- "$f" "$target"',
    '  printf "%s\\t%s\\n" "$f" "$target"',
    'done',
  ].join('\n');
  const result = await host.script(`move ${paths.length} file(s) into ${backupDir}`, script, [backupDir, ...paths]);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [path, backup] = line.split('\t');
      return { path: path!, backup: backup! };
    });
}

export interface MovedFile {
  path: string;
  backup: string;
}

/**
 * Moves files back from the backup to where they were. A file already at the original path is
 * first moved into `asideDir`, so nothing is overwritten or lost.
 */
export async function restoreFromBackup(host: HostRunner, files: MovedFile[], asideDir: string): Promise<MovedFile[]> {
  const restored: MovedFile[] = [];
  for (const file of files) {
    if (!(await hostPathExists(host, file.backup))) continue;
    if (await hostPathExists(host, file.path)) await moveIntoBackup(host, asideDir, [file.path]);
    await host.script(`restore ${file.path}`, 'set -e\nmkdir -p -- "$(dirname -- "$2")"\nmv -- "$1" "$2"', [file.backup, file.path]);
    restored.push(file);
  }
  return restored;
}

/** Lists files in a folder whose names match a shell pattern, as absolute paths. */
export async function listHostFiles(host: HostRunner, dir: string, pattern: string): Promise<string[]> {
  const script = 'cd -- "$1" 2>/dev/null || exit 0\nfor f in $2; do [ -e "$f" ] || [ -L "$f" ] && echo "$1/$f"; done; exit 0';
  const result = await host.script(`list ${dir}/${pattern}`, script, [dir, pattern]);
  return result.stdout.split('\n').filter(Boolean);
}

/** Appends one line to a file (mode 0600 when new), creating its folder; the line is flushed before it returns. */
export async function appendHostLine(host: HostRunner, path: string, line: string): Promise<void> {
  const script = 'set -e\numask 077\nmkdir -p -- "$(dirname -- "$1")"\nprintf "%s\\n" "$2" >> "$1"\nsync -- "$1" 2>/dev/null || sync';
  await host.script(`append to ${path}`, script, [path, line]);
}

export async function removeHostFile(host: HostRunner, path: string): Promise<void> {
  await host.script(`remove ${path}`, 'rm -f -- "$1"', [path]);
}

export interface ClientIdentity {
  commonName: string;
  notAfter: Date;
}

/**
 * Reads the subject of the client certificate that a kubeconfig on the host uses, without ever
 * reading a private key: only the CERTIFICATE blocks leave the host. Returns undefined when the
 * kubeconfig, or the certificate it names, is missing or unreadable.
 */
export async function readClientIdentity(host: HostRunner, kubeconfig: string): Promise<ClientIdentity | undefined> {
  const script = [
    'kc="$1"',
    '[ -r "$kc" ] || exit 3',
    "data=$(sed -n 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' \"$kc\" | head -n 1)",
    'if [ -n "$data" ]; then printf "%s" "$data" | base64 -d; exit 0; fi',
    "path=$(sed -n 's/^[[:space:]]*client-certificate:[[:space:]]*//p' \"$kc\" | head -n 1 | tr -d '\"'\"'\")",
    '[ -n "$path" ] || exit 3',
    'case "$path" in /*) ;; *) path="$(dirname -- "$kc")/$path" ;; esac',
    '[ -r "$path" ] || exit 3',
    "sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \"$path\"",
  ].join('\n');
  const result = await host.script(`read client certificate of ${kubeconfig}`, script, [kubeconfig], { okCodes: [0, ABSENT] });
  if (result.code === ABSENT) return undefined;
  const pem = result.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (!pem) return undefined;
  try {
    const cert = new X509Certificate(pem[0]);
    const commonName = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1] ?? '';
    return { commonName, notAfter: new Date(cert.validTo) };
  } catch {
    // An unparsable certificate counts as none: the kubelet would bootstrap again too.
    return undefined;
  }
}
