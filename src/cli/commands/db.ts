import type { Command } from 'commander';

/**
 * `model-rollout db`: the checkout's embedded PostgreSQL, used by every command when DATABASE_URL is unset.
 * It starts on first use and keeps running between commands so that they all share one database.
 */
export function registerDbCommand(program: Command): void {
  const db = program
    .command('db')
    .description('The embedded PostgreSQL under .data/postgres (used when DATABASE_URL is unset)');

  db.command('status')
    .description('Say whether the embedded Postgres runs, and its URL')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { findEmbeddedPostgres, embeddedRoot } = await import('../../store/embedded-postgres');
      const { passwordPath } = await import('../../store/embedded-postgres-auth');
      const server = await findEmbeddedPostgres({ progress: (m) => console.error(m) });
      if (opts.json) {
        // Named fields only: the server's connection string holds its password.
        const { url, port, pid, root } = server ?? {};
        console.log(
          JSON.stringify(
            server ? { running: true, url, port, pid, root } : { running: false, root: embeddedRoot() },
          ),
        );
      } else if (server) {
        console.log(`embedded Postgres running at ${server.url} (pid ${server.pid}, data in ${server.root})`);
        console.log(`password: in ${passwordPath(server.root)} (readable by its owner only)`);
      } else {
        console.log(
          `embedded Postgres not running (data in ${embeddedRoot()}); any command that needs it starts it`,
        );
      }
      if (process.env.DATABASE_URL)
        console.log('note: DATABASE_URL is set, so the commands use that server instead');
    });

  db.command('start')
    .description('Start the embedded Postgres (or find it running) and print its URL')
    .action(async () => {
      const { ensureEmbeddedPostgres } = await import('../../store/embedded-postgres');
      const { passwordPath } = await import('../../store/embedded-postgres-auth');
      const server = await ensureEmbeddedPostgres({ progress: (m) => console.error(m) });
      console.log(`${server.started ? 'started' : 'already running'}: ${server.url}`);
      // The printed URL has no password; the checkout's processes read it from the file.
      console.log(`password: in ${passwordPath(server.root)} (readable by its owner only)`);
    });

  db.command('stop')
    .description('Stop the embedded Postgres (its data stays in .data/postgres)')
    .action(async () => {
      const { stopEmbeddedPostgres } = await import('../../store/embedded-postgres');
      const stopped = await stopEmbeddedPostgres({ progress: (m) => console.error(m) });
      console.log(stopped ? 'embedded Postgres stopped' : 'embedded Postgres was not running');
    });
}
