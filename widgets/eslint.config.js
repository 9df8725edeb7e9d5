// ESLint for the widgets' TypeScript: the recommended rules of ESLint and typescript-eslint.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(js.configs.recommended, ...tseslint.configs.recommended, {
  ignores: ["orchestrator_widgets/static/**", "node_modules/**"],
});
