/**
 * A kubelet unit, environment file or config file whose layout the tool does not
 * understand, so it cannot tell where the kubelet's settings live.
 */
export class KubeletLayoutError extends Error {
  override name = 'KubeletLayoutError';

  constructor(
    /** The file that is wrong, as a path on the host. */
    readonly file: string,
    /** Description of the problem in that file and of the fix. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/**
 * An edit of a flag or a config field that cannot be made safely as text, or whose
 * input value is invalid.
 */
export class KubeletEditError extends Error {
  override name = 'KubeletEditError';

  constructor(
    /** The edited item: a variable, an ExecStart line or a config field. */
    readonly target: string,
    /** Description of the problem and of the fix. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot edit ${target}: ${problem}`, options);
  }
}
