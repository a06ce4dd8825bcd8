/**
 * `model-rollout events stats`: what request events cost the database, per route and day (requests, rows
 * and bytes of each day's partition), and the partitions that exist (including the days created ahead).
 */
import type { Command } from 'commander';
import { UsageError } from '../errors';

export function registerEventsCommand(program: Command): void {
  const events = program.command('events').description('Request events: storage per route and day');
  events
    .command('stats')
    .description('Rows, bytes and partitions of request events per route and day (DATABASE_URL or embedded)')
    .option('--route <name>', 'only this route')
    .option('--days <n>', 'days back (default 30)', '30')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { route?: string; days: string; json?: boolean }) => {
      const days = Number(opts.days);
      if (!Number.isInteger(days) || days < 0)
        throw new UsageError(`--days: expected a whole number >= 0, got "${opts.days}"`);
      const { openDatabase } = await import('../../store/database');
      const { migrate } = await import('../../store/migrate');
      const { eventStats } = await import('../../store/event-stats');
      const { listPartitions } = await import('../../store/partitions');
      const db = await openDatabase();
      try {
        await migrate(db.pool);
        const stats = await eventStats(db.pool, { route: opts.route, days });
        const partitions = await listPartitions(db.pool);
        if (opts.json) {
          console.log(JSON.stringify({ days: stats, partitions }));
          return;
        }
        const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
        console.log(
          [
            'day'.padEnd(10),
            'route'.padEnd(24),
            'requests'.padStart(12),
            'rows (est.)'.padStart(12),
            'size'.padStart(11),
            '  partition',
          ].join(' '),
        );
        for (const s of stats)
          console.log(
            [
              s.day.padEnd(10),
              s.route.padEnd(24),
              s.requests.toLocaleString('en-US').padStart(12),
              s.rows.toLocaleString('en-US').padStart(12),
              mib(s.bytes).padStart(11),
              `  ${s.partition}`,
            ].join(' '),
          );
        if (stats.length === 0) console.log('(no events in the last ' + days + ' days)');
        const ev = partitions.filter((p) => p.table === 'request_events');
        console.log(
          `\n${ev.length} daily partitions of request_events (${ev[0]?.day ?? '-'} .. ${ev.at(-1)?.day ?? '-'}), ${mib(ev.reduce((a, p) => a + p.bytes, 0))}; ` +
            `${partitions.length - ev.length} of shadow_comparisons`,
        );
      } finally {
        await db.close();
      }
    });
}
