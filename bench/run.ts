/**
 * `npm run bench`: speed and size, measured against patchelf in the same run (never in timed tests).
 * Each suite is a module exporting `run(): Promise<void>` that prints its own table.
 */
const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  elf: () => import('./elf.js'),
  apply: () => import('./apply.js'),
  supervise: () => import('./supervise.js'),
};

const wanted = process.argv.slice(2);
for (const [name, load] of Object.entries(suites)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`## bench: ${name}`);
  await (await load()).run();
}
