// Shared tail of the training scripts: run `main` when the file is executed
// directly (not when imported by tests), exit 1 with the message on failure.

export function runIfMain(fileUrlPath: string, main: () => Promise<void>): void {
  if (!process.argv[1] || fileUrlPath !== process.argv[1]) return;
  main().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
