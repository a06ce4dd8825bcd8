import pino from 'pino';

/**
 * The process-wide structured logger. API keys must never be logged: the redact paths below are a
 * safety net, the real rule is that no code passes a key to the logger.
 */
export const logger = pino({
  level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'warn' : 'info'),
  redact: {
    paths: ['apiKey', '*.apiKey', 'headers.authorization', '*.headers.authorization', 'authorization'],
    censor: '[redacted]',
  },
  base: undefined,
});

export type Logger = typeof logger;
