// Logging through winston: readable lines (coloured on a terminal) or JSON
// lines on stderr, and JSON lines in run.log in the state directory. Child
// loggers carry `run`, `node` and `step`, so every line names them.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
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
  // winston's File transport can raise "write after end" when the logger is
  // ended while the file is behind (winston 3.19), so run.log is a Stream
  // transport over a write stream that close() drains and ends itself.
  const files: { transport: winston.transport; stream: WriteStream }[] = [];
  const buffered = (): boolean => logger.writableLength > 0 || logger.readableLength > 0 || logger.transports.some((transport) => transport.writableLength > 0);
  return {
    logger,
    addFile(file: string): void {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const fileStream = createWriteStream(file, { flags: 'a', mode: 0o600 });
      const transport = new winston.transports.Stream({
        stream: fileStream,
        format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      });
      files.push({ transport, stream: fileStream });
      logger.add(transport);
    },
    async close(): Promise<void> {
      while (buffered()) await new Promise((resolve) => setTimeout(resolve, 5));
      for (const { transport, stream: fileStream } of files.splice(0)) {
        logger.remove(transport);
        fileStream.end();
        await finished(fileStream);
      }
    },
  };
}
