// What the dashboard's Python side publishes in its `board` trait (orchestrator_widgets/dashboard.py).

export interface RunRow {
  id: string;
  status: string;
  agent_id: string;
  workflow_id: string;
  agent: string;
  workflow: string;
  version: number;
  trigger: string;
  created_at: string;
  finished_at: string;
  question: string;
}

export interface AgentRow {
  id: string;
  name: string;
  framework: string;
  last_run: RunRow | null;
  runs: number;
  success_rate: number | null;
  health: string;
}

export interface ScheduleRow {
  id: string;
  name: string;
  workflow: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  next_run_at: string;
}

export interface Board {
  error?: string;
  user?: string;
  org?: { id: string; name: string };
  health?: { status: string; database?: string; detail?: string };
  hours?: number;
  windows?: number[];
  counts?: Record<string, number>;
  active?: RunRow[];
  latest?: RunRow[];
  agents?: AgentRow[];
  workflows?: { id: string; name: string; agent_id: string }[];
  schedules?: ScheduleRow[];
  per_hour?: { hour: string; status: string; runs: number }[];
  durations?: { framework: string; runs: number; p50_s: number; p95_s: number }[];
  tokens?: { framework: string; prompt_tokens: number; completion_tokens: number }[];
  message?: string;
}

export type Command =
  | { type: "run" | "cancel" | "approve" | "reject" | "retry" | "open"; id: string }
  | { type: "schedule"; id: string; enabled: boolean }
  | { type: "close" }
  | { type: "window"; hours: number };
