// Reads a plan file: YAML with positions, schema, extra rules, then defaults.
// Every problem found is reported at once through InvalidPlanError.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Plan, PlanNode } from '../plan-types.js';
import { parseDuration } from './duration.js';
import { InvalidPlanError, IssueList } from './issues.js';
import { asRecord, checkRules } from './rules.js';
import { checkSchema } from './schema-check.js';
import { YamlSource, YamlSyntaxError } from './yaml-source.js';

export interface LoadPlanOptions {
  /** Used to expand `~/` in paths. @default os.homedir() */
  homeDir?: string;
}

/** Reads and validates the plan at `file`; throws InvalidPlanError listing every problem. */
export function loadPlan(file: string, options: LoadPlanOptions = {}): Plan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new InvalidPlanError(file, [{ file, line: 1, column: 1, path: '(root)', message: `cannot read the plan: ${reason}`, fix: 'check the path to the plan file' }]);
  }
  return parsePlan(text, file, options);
}

/** Validates plan text; `file` names it in errors and anchors relative paths. */
export function parsePlan(text: string, file: string, options: LoadPlanOptions = {}): Plan {
  // Positions cost memory on large plans and are only needed for errors, so
  // a first pass goes without them and a second pass, on error, records them.
  const quick = new IssueList(file);
  let quickSource: YamlSource | undefined;
  try {
    quickSource = new YamlSource(text, false);
  } catch (error) {
    if (!(error instanceof YamlSyntaxError)) throw error;
  }
  if (quickSource !== undefined && quickSource.value !== undefined && quickSource.value !== null) {
    checkSchema(quickSource.value, quickSource, quick);
    checkRules(quickSource.value, quickSource, quick);
    if (quick.issues.length === 0) return applyDefaults(quickSource.value as Record<string, unknown>, file, options.homeDir ?? homedir());
  }
  return reportIssues(text, file);
}

/** Parses again with positions and throws InvalidPlanError with every issue located. */
function reportIssues(text: string, file: string): never {
  const issues = new IssueList(file);
  let source: YamlSource;
  try {
    source = new YamlSource(text);
  } catch (error) {
    if (!(error instanceof YamlSyntaxError)) throw error;
    issues.add(error.position, [], `malformed YAML: ${error.message}`, error.fix ?? 'correct the YAML syntax at this position (indentation, quotes, a missing ":" or "-")');
    throw new InvalidPlanError(file, issues.sorted());
  }
  if (source.value === undefined || source.value === null) {
    issues.add({ line: 1, column: 1 }, [], 'the file is empty', 'write a RenamePlan; see plans/example.yaml');
    throw new InvalidPlanError(file, issues.sorted());
  }
  checkSchema(source.value, source, issues);
  checkRules(source.value, source, issues);
  throw new InvalidPlanError(file, issues.sorted());
}

function applyDefaults(raw: Record<string, unknown>, file: string, homeDir: string): Plan {
  const planDir = path.dirname(path.resolve(file));
  const spec = asRecord(raw['spec'])!;
  const metadata = asRecord(raw['metadata'])!;
  const strategy = asRecord(spec['strategy']) ?? {};
  const access = asRecord(spec['access']) ?? {};
  const kubelet = asRecord(spec['kubelet']) ?? {};
  const rename = asRecord(spec['rename']) ?? {};
  const resolvePath = (value: unknown): string | undefined => {
    if (typeof value !== 'string') return undefined;
    if (value === '~') return homeDir;
    if (value.startsWith('~/')) return path.join(homeDir, value.slice(2));
    return path.resolve(planDir, value);
  };
  const duration = (value: unknown, fallback: string): number => parseDuration(typeof value === 'string' ? value : fallback)!;

  const plan: Plan = {
    apiVersion: 'kube-node-rename/v1alpha1',
    kind: 'RenamePlan',
    metadata: { name: metadata['name'] as string },
    spec: {
      nodes: (spec['nodes'] as Record<string, unknown>[]).map(toPlanNode),
      strategy: {
        parallelism: (strategy['parallelism'] as number | undefined) ?? 1,
        canary: (strategy['canary'] as number | undefined) ?? 0,
        maxFailures: (strategy['maxFailures'] as number | undefined) ?? 0,
        onFailure: (strategy['onFailure'] as 'stop' | 'rollback' | undefined) ?? 'stop',
      },
      access: {
        transport: (access['transport'] as 'ssh' | 'local' | undefined) ?? 'ssh',
        sshOptions: (access['sshOptions'] as string[] | undefined) ?? [],
        sudo: (access['sudo'] as boolean | undefined) ?? false,
      },
      kubelet: { unit: (kubelet['unit'] as string | undefined) ?? 'kubelet' },
      rename: {
        pods: (rename['pods'] as 'keep' | 'cordon' | 'drain' | undefined) ?? 'keep',
        drainTimeoutMs: duration(rename['drainTimeout'], '5m'),
        csrApproval: (rename['csrApproval'] as 'auto' | 'controller' | undefined) ?? 'auto',
        bootstrapTokenTTLMs: duration(rename['bootstrapTokenTTL'], '1h'),
        readyTimeoutMs: duration(rename['readyTimeout'], '5m'),
        csrTimeoutMs: duration(rename['csrTimeout'], '5m'),
      },
    },
    source: { file: path.resolve(file), dir: planDir },
  };
  if (typeof access['user'] === 'string') plan.spec.access.user = access['user'];
  if (typeof access['port'] === 'number') plan.spec.access.port = access['port'];
  const identityFile = resolvePath(access['identityFile']);
  if (identityFile !== undefined) plan.spec.access.identityFile = identityFile;
  const sshConfig = resolvePath(access['sshConfig']);
  if (sshConfig !== undefined) plan.spec.access.sshConfig = sshConfig;
  return plan;
}

function toPlanNode(raw: Record<string, unknown>): PlanNode {
  const node: PlanNode = { from: raw['from'] as string, to: raw['to'] as string };
  if (typeof raw['host'] === 'string') node.host = raw['host'];
  if (typeof raw['user'] === 'string') node.user = raw['user'];
  if (typeof raw['port'] === 'number') node.port = raw['port'];
  return node;
}
