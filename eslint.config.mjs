// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/**
 * The layers of lib/, bottom first. A folder may import from the folders before it and from
 * itself, never from one after it; the entry points (lib/*.ts) may import anything.
 */
const LAYERS = [
  'base',
  'codec',
  'security',
  'table',
  'protocol',
  'persistence',
  'cluster',
  'replication',
  'peer-store',
  'monitoring',
  'http',
]

const layerRules = LAYERS.map((layer, index) => ({
  files: [`lib/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: LAYERS.slice(index + 1).map((above) => ({
          group: [`**/${above}/*`, `**/${above}/**`],
          message: `lib/${layer} is below lib/${above} and must not import from it (layers: ${LAYERS.join(' < ')}). Pass an interface down instead.`,
        })),
      },
    ],
  },
}))

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'test-output/', 'scratch/', 'bench/results/', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // PeerStore's methods return a promise when called without a callback, as connect-redis's
      // do, where express-session's Store declares them void: that inheritance is on purpose.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { inheritedMethods: false } }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_' }],
      // Augmenting Express's Request type is done with `declare global { namespace Express }`.
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
    },
  },
  {
    // Tests drive untyped things on purpose (IPC messages, JSON bodies, jest's asymmetric matchers,
    // methods passed to expect): the unsafe-any family would only add casts that prove nothing.
    files: ['__tests__/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  ...layerRules,
)
