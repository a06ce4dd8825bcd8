import type { Command } from 'commander';
import { openDatabase } from '../../store/database';
import { migrate } from '../../store/migrate';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Apply the SQL migrations to DATABASE_URL (or the embedded Postgres under .data/postgres)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      const db = await openDatabase();
      try {
        const result = await migrate(db.pool);
        if (opts.json) console.log(JSON.stringify({ database: db.url, ...result }));
        else {
          console.log(`database: ${db.url}${db.embedded ? ' (embedded)' : ''}`);
          console.log(
            `applied ${result.applied.length} migration(s)${result.applied.length ? ': ' + result.applied.join(', ') : ''}`,
          );
          console.log(`${result.alreadyApplied.length} already applied`);
        }
      } finally {
        await db.close();
      }
    });
}
