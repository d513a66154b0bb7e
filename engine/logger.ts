// Logging through winston: readable lines (coloured on a terminal) or JSON
// lines on stderr, and JSON lines in run.log in the state directory. Child
// loggers carry `run`, `node` and `step`, so every line names them.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import winston from 'winston';

export type LogFormat = 'text' | 'json';
export type Logger = winston.Logger;

export interface LoggerOptions {
  format: LogFormat;
  /** @default 'info' */
  level?: string;
  /** Console output; @default process.stderr */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface LoggerHandle {
  logger: Logger;
  /** Adds a JSON-lines file transport (run.log), created with mode 0600. */
  addFile(file: string): void;
  /** Flushes and closes every transport. */
  close(): Promise<void>;
}

const textLine = winston.format.printf((info) => {
  const { level, message, timestamp, run, node, step, ...rest } = info as Record<string, unknown>;
  const where = [run, node !== undefined && step !== undefined ? `${String(node)}/${String(step)}` : node].filter((part) => part !== undefined).join(' ');
  const fields = Object.entries(rest)
    .filter(([key]) => typeof key === 'string')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${String(timestamp)} ${String(level)} ${where === '' ? '' : `[${where}] `}${String(message)}${fields === '' ? '' : `  ${fields}`}`;
});

export function createLogger(options: LoggerOptions): LoggerHandle {
  const stream = options.stream ?? process.stderr;
  const consoleFormat =
    options.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss' }),
          ...(stream.isTTY === true ? [winston.format.colorize()] : []),
          textLine,
        );
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    transports: [new winston.transports.Stream({ stream, format: consoleFormat })],
  });
  const fileTransports: winston.transport[] = [];
  return {
    logger,
    addFile(file: string): void {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const transport = new winston.transports.File({
        filename: file,
        format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
        options: { flags: 'a', mode: 0o600 },
      });
      fileTransports.push(transport);
      logger.add(transport);
    },
    async close(): Promise<void> {
      const finished = fileTransports.map((transport) => new Promise<void>((resolve) => transport.once('finish', () => resolve())));
      logger.end();
      await Promise.all(finished);
    },
  };
}
