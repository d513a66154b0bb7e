/** Process exit codes of kube-node-rename. */
export const ExitCode = {
  /** The command did what it was asked; for apply, every node succeeded. */
  ok: 0,
  /** apply ran and at least one node failed, was blocked or did not start. */
  runFailed: 1,
  /** Invalid input or state: a bad plan or option, a changed plan, a held lock, unreadable state, services that cannot be set up. Nothing ran. */
  invalidInput: 2,
  /** apply was stopped by SIGINT or SIGTERM; run it again to resume. */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
