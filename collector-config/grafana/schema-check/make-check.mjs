// Writes dashboard.check.ts: the dashboard JSON as an object literal typed as @grafana/schema's
// Dashboard, so tsc checks every field (an imported .json would lose its literal types).
import { readFileSync, writeFileSync } from "node:fs";

const dashboard = JSON.parse(readFileSync(new URL("../dashboards/ai-generated-code.json", import.meta.url), "utf8"));
writeFileSync(
  new URL("dashboard.check.ts", import.meta.url),
  "import type { Dashboard } from '@grafana/schema';\n\n" +
    `export const dashboard: Dashboard = ${JSON.stringify(dashboard, null, 2)};\n`,
);
