import type { ServerResponse } from 'node:http';

/**
 * Writes one chunk of a streamed response and, when the socket buffer is full (a client reading slowly),
 * waits for it to drain or for the connection to close. Returns nothing (no promise) in the common case,
 * so a fast stream allocates nothing per chunk.
 */
export function writeChunk(res: ServerResponse, chunk: string, signal?: AbortSignal): Promise<void> | void {
  if (res.write(chunk) || res.destroyed || signal?.aborted) return;
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
