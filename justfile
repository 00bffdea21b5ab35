# ivpay's vocabulary. `just` lists the recipes; .ci/run runs the same commands.

# list the recipes
default:
    @just --list

# format every crate
fmt:
    cargo fmt --all

# format check and clippy with warnings denied
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# every test; PostgreSQL tests run when IVPAY_TEST_DATABASE_URL is set
test:
    cargo test --workspace --all-features

# every test, with PostgreSQL required (a fresh database on the local server)
test-pg db="ivpay_test":
    psql -h 127.0.0.1 -U postgres -q -c 'DROP DATABASE IF EXISTS {{db}} WITH (FORCE)'
    psql -h 127.0.0.1 -U postgres -q -c 'CREATE DATABASE {{db}}'
    IVPAY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/{{db}} IVPAY_REQUIRE_POSTGRES=1 cargo test --workspace --all-features

# the domain and use-case tests alone: no network, no database
test-core:
    cargo test -p ivpay-domain -p ivpay-ports -p ivpay-service --all-features

# schemathesis (pinned) with every check against the running binary's /openapi.json
schemathesis examples="100":
    cargo build -p ivpay-app --bin ivpay-app
    IVPAY_SCHEMATHESIS_EXAMPLES={{examples}} bash .ci/schemathesis target/debug/ivpay-app

# API docs for every crate
doc:
    cargo doc --workspace --no-deps --all-features

# the CI script, as CI runs it
ci:
    bash .ci/run

# run the service (embedded sandbox and SQLite unless configured otherwise)
run:
    cargo run -p ivpay-app

# a deployable binary in target/dist: the release build without its debug line tables,
# which are kept beside it (ivpay-app.debug, linked by gnu-debuglink) for backtraces
dist:
    cargo build --release -p ivpay-app --bin ivpay-app
    mkdir -p target/dist
    objcopy --only-keep-debug target/release/ivpay-app target/dist/ivpay-app.debug
    objcopy --strip-all --add-gnu-debuglink=target/dist/ivpay-app.debug target/release/ivpay-app target/dist/ivpay-app
    ls -l target/release/ivpay-app target/dist/

# apply database migrations
migrate:
    cargo run -p ivpay-app -- migrate

# run a standalone IVPAY sandbox on 127.0.0.1:8090
sandbox:
    cargo run -p ivpay-app -- sandbox

# ivpay against a raw-sqlx baseline, same fake IVPAY, SQLite and PostgreSQL (release build)
bench secs="10":
    cargo build --release -p ivpay-app --bin ivpay-app
    cargo build --release -p ivpay-tests --bin loadgen --bin bench-baseline --bin bench-upstream
    IVPAY_BENCH_SECS={{secs}} IVPAY_BENCH_DATABASE_URL=${IVPAY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} target/release/loadgen

# only create without and with one notification endpoint, `pairs` times on fresh databases; prints the median ratio
bench-notify pairs="3" secs="8":
    cargo build --release -p ivpay-app --bin ivpay-app
    cargo build --release -p ivpay-tests --bin loadgen --bin bench-baseline --bin bench-upstream
    IVPAY_BENCH_ONLY=notify IVPAY_BENCH_NOTIFY_PAIRS={{pairs}} IVPAY_BENCH_SECS={{secs}} IVPAY_BENCH_DATABASE_URL=${IVPAY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} target/release/loadgen

# chaos harness: kill -9, upstream faults, give-ups, two instances, a poison row, then the ledger check; prints a table (IVPAY_CHAOS_SEED=N replays)
chaos mode="long" scenarios="all":
    cargo build -p ivpay-app --bin ivpay-app
    cargo build -p ivpay-tests --bin chaos
    IVPAY_TEST_DATABASE_URL=${IVPAY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} ${CARGO_TARGET_DIR:-target}/debug/chaos --mode {{mode}} --scenarios {{scenarios}}
