// Shared by the e2e client scripts: run one named check, print "ok NAME",
// or print the failure and exit 1 (the first failed check ends the run).
export async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    console.error(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exit(1);
  }
}
