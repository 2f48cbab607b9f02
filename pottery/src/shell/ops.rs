//! One definition per operation, three surfaces.
//!
//! A structure's operations are written once, in an [`ops!`] table next to its `Core` (the
//! plans: request plus decoder). Each entry is shaped like the method it defines — its docs,
//! its examples, a `fn` with the method's signature and a normal `where` clause — and its body
//! makes the plan by calling a plan builder, `Core::*_plan`. The table produces from it:
//!
//! * the blocking method (`RedisDict::insert`), which runs the plan once through the blocking
//!   runner;
//! * the async method (`aio::RedisDict::insert`), which runs the same plan through the async
//!   runner;
//! * the batch method (`DictOps::insert`, from [`Batch::on`](crate::Batch::on)), which queues
//!   the same plan and hands back a [`Pending`](crate::Pending); the table's header declares
//!   that batch view and its [`Batchable`](crate::Batchable) impls.
//!
//! So adding an operation is one edit, and the three surfaces cannot drift apart. Operations
//! made of several plans run one after another (set algebra over two servers, counter
//! arithmetic) are entries too, marked `#[steps(r)]`: blocking and async only. What is not a
//! table entry (iterators, the dict's `entry`, constructors, anything that loops or waits) is
//! written per shell, next to the table.
//!
//! # How to find an operation
//!
//! Two steps from the API docs to the wire:
//!
//! 1. `RedisDict::insert` in the docs → the `fn insert` entry of the `ops!` table in
//!    `collections/dict.rs` (same name; every table starts with this note);
//! 2. its body, `self.core.insert_plan(&k, &v)` → `Core::insert_plan`, just above the table,
//!    whose doc line names the request: "The plan: `scripts/hash_insert.lua`
//!    (`HASH_INSERT`)" (a `script!` constant, defined at the top of the file), or the
//!    command ("The plan: `HSET`").
//!
//! Plan builders are named `*_plan` so that they are not mistaken for the methods they serve.

/// A table of operations, each defined once: it produces the blocking, the async and the
/// batch method of every entry, for every listed structure (a list and a deque share most of
/// theirs), and declares the batch view of each structure.
///
/// How to find an operation: see [the module docs](self).
///
/// ```text
/// crate::shell::ops! {
///     // How to find an operation: … (a short note atop every table)
///     impl<K: Storable, V: Storable>
///         /// Docs of the batch view (declared here because of `(Core<K, V>)`).
///         RedisDict<K, V> and aio::RedisDict<K, V>, batch DictOps(Core<K, V>)
///     {
///         // Every `#[example]` runs after these hidden lines (`This` names the structure
///         // of the surface: `RedisDict`, or `aio::RedisDict` in the async example):
///         //     # let redis = pottery::testing::doctest_redis();
///         //     # let d: This<String, i64> = This::random(&redis)?;      (`.await?` in async)
///         // and ends with `# d.clear()?;` and `# Ok::<(), pottery::Error>(())`.
///         example d: This<String, i64> = random(&redis), clear;
///
///         /// Sets `k` to `v`, returning the previous value.
///         #[example]
///         /// assert_eq!(d.insert("a".into(), 1)?, None);
///         #[example(async)]
///         /// assert_eq!(d.insert("a".into(), 1).await?, None);
///         fn insert(&self, k: K, v: V) -> Option<V> {
///             self.core.insert_plan(&k, &v)
///         }
///
///         /// `self ∪ other`, in several steps (not batchable): the body is awaited, with
///         /// the runner `r`.
///         #[example(bare)]
///         /// # let s: This<u32> = This::random(&redis)?;
///         /// assert!(s.union([1])?.contains(&1));
///         #[steps(r)]
///         fn union<'a>(&self, other: impl IntoSetOperand<'a, T>) -> HashSet<T>
///         where
///             T: Eq + Hash,
///         {
///             self.core.algebra_decoded(r, Algebra::Union, other.into_operand()).await
///         }
///     }
/// }
/// ```
///
/// * An entry is the operation's docs (shared by the blocking and the async method), its
///   examples, and a `fn` with the signature of the method (`T` is the result of a successful
///   call: the method returns `Result<T>`) whose body makes the plan: an `Op`, or a
///   `Result<Op>` when making it can fail. The batch method is named the same, returns a
///   [`Pending<T>`](crate::Pending), and takes its docs from the entry's first paragraph.
/// * `#[steps(r)]`: the body is a sequence of plans awaited one after another with the
///   runner `r` (it yields `Result<T>`); such an entry has no batch method.
/// * Examples: `#[example]` is run after the header's hidden set-up and before its hidden
///   teardown; `#[example(bare)]` gets only the server (`redis`) and the final
///   `Ok(())` (and, in `#[example(async, bare)]`, the runtime), and writes its own hidden
///   lines; `#[example(raw)]` gets nothing but the fences. `#[example(async)]` is optional.
/// * `batch DictOps(Core<K, V>)` declares the view type; `batch DictOps` adds methods to a view
///   declared by another table.
/// * The batch method's docs are "Queues [`RedisDict::insert`]:" and the entry's first
///   paragraph (the doc lines up to the first empty one), so the links there must resolve on
///   the view as well (`Self::insert` does when the view has `insert`; write
///   `RedisCache::info`, not `Self::info`, for a method it lacks: `make lint` says which).
/// * Bounds, in the header and in `where` clauses, are paths with generic arguments
///   (`Borrow<Q>`, `std::hash::Hash`), `?Sized` and lifetimes, joined by `+`: what
///   `macro_rules` can take without a muncher. Inside an entry, `self.core` is the `Core` (a
///   `&'a Core` in the batch view): a decoder closure that must outlive the call borrows what
///   it needs first (`let key = &self.core.key;`), not `self`.
macro_rules! ops {
    // The header: generics, then one or more structures, each with its async shell and its
    // batch view.
    (
        impl $(<$($g:ident $(: $gb0:ident $(+ $gb:ident)* $(+ $glt:lifetime)?)?),* $(,)?>)?
        $(
            $(#[doc = $vdoc:tt])*
            $blocking:ident $(<$($bg:ty),*>)? and $aio_mod:ident::$aio:ident $(<$($ag:ty),*>)?,
            batch $view:ident $(($core:ty))?
        );+ $(;)?
        { $($entries:tt)* }
    ) => {
        $crate::shell::ops!(@targets [$($($g),*)?] [$($($g: $($gb0 $(+ $gb)* $(+ $glt)?)?),*)?]
            { $($entries)* }
            $([[$(#[doc = $vdoc])*] [$blocking, $aio_mod::$aio, $view] [$($core)?]])+);
    };
    (@targets $g:tt $bound:tt $entries:tt $([$vdoc:tt $target:tt $core:tt])+) => {
        $(
            $crate::shell::ops!(@view $g $bound $vdoc $target $core);
            $crate::shell::ops!(@target $g $bound $target $entries);
        )+
    };

    // The batch view of one structure (declared once, by the table that names its core).
    (@view [$($g:ident),*] [$($bound:tt)*] [$($vdoc:tt)*] [$blocking:ident, $aio_mod:ident::$aio:ident, $view:ident] []) => {};
    (@view [$($g:ident),*] [$($bound:tt)*] [$($vdoc:tt)*] [$blocking:ident, $aio_mod:ident::$aio:ident, $view:ident] [$core:ty]) => {
        $($vdoc)*
        pub struct $view<'q, 'a, $($g),*> {
            queue: &'q $crate::batch::Queue<'a>,
            core: &'a $core,
        }

        impl<$($g),*> std::fmt::Debug for $view<'_, '_, $($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($view))
                    .field("key", &self.core.key)
                    .finish()
            }
        }

        $crate::shell::ops!(@batchable [$($g),*] [$($bound)*] $view, $blocking<$($g),*>);
        $crate::shell::ops!(@batchable [$($g),*] [$($bound)*] $view, $aio_mod::$aio<$($g),*>);
    };
    (@batchable [$($g:ident),*] [$($bound:tt)*] $view:ident, $shell:ty) => {
        impl<$($g),*> $crate::batch::sealed::Sealed for $shell {}

        impl<$($g),*> $crate::batch::Batchable for $shell
        where
            $($bound)*
        {
            type Ops<'q, 'a> = $view<'q, 'a, $($g),*> where Self: 'a, 'a: 'q;

            fn queue_on<'q, 'a>(&'a self, queue: &'q $crate::batch::Queue<'a>) -> Self::Ops<'q, 'a> {
                $view { queue, core: &self.core }
            }
        }
    };

    // The entries of one structure, after the example set-up they share (if any).
    (
        @target $g:tt $bound:tt $target:tt {
            example $ex:ident: $exty:ty = $ctor:ident($($carg:tt)*), $td:ident;
            $($entries:tt)*
        }
    ) => {
        $crate::shell::ops!(@entries $g $bound $target [$ex, $exty, $ctor, [$($carg)*], $td] $($entries)*);
    };
    (@target $g:tt $bound:tt $target:tt { $($entries:tt)* }) => {
        $crate::shell::ops!(@entries $g $bound $target [] $($entries)*);
    };
    // The entries of one structure: its blocking, async and batch methods.
    (
        @entries [$($g:ident),*] [$($bound:tt)*] [$blocking:ident, $aio_mod:ident::$aio:ident, $view:ident]
            $exh:tt
        $(
            $(#[doc = $doc:tt])*
            #[example $(($bmode:ident))?]
            $(#[doc = $bex:tt])*
            $(
                #[example(async $(, $amode:ident)?)]
                $(#[doc = $aex:tt])*
            )?
            $(#[steps($r:ident)])?
            fn $name:ident $(<$($mg:tt),*>)? (&$this:ident $(, $arg:ident: $aty:ty)* $(,)?) -> $out:ty
            $(
                where $(
                    $wt:ty: $wh0:tt $($wr0:ident)? $(:: $ws0:ident)* $(<$($wa0:ty),*>)?
                        $(+ $wh:tt $($wr:ident)? $(:: $ws:ident)* $(<$($wa:ty),*>)?)*
                ),+ $(,)?
            )?
            { $($body:tt)* }
        )*
    ) => {
        impl<$($g),*> $blocking<$($g),*>
        where
            $($bound)*
        {
            $(
                $crate::shell::ops!(@example [$blocking] $exh [$($bmode)?] [$($bex)*]
                    => @blocking [$($doc)*] [$($r)?] [$blocking] $name [$($($mg),*)?] $this [$($arg: $aty),*] [$out]
                    [$($($wt: $wh0 $($wr0)? $(:: $ws0)* $(<$($wa0),*>)? $(+ $wh $($wr)? $(:: $ws)* $(<$($wa),*>)?)*),+)?]
                    { $($body)* });
            )*
        }

        impl<$($g),*> $aio_mod::$aio<$($g),*>
        where
            $($bound)*
        {
            $(
                $crate::shell::ops!(@aio_example [$aio_mod::$aio] $exh $([$($amode)?] [$($aex)*])?
                    => @aio [$($doc)*] [$($r)?] [$blocking] $name [$($($mg),*)?] $this [$($arg: $aty),*] [$out]
                    [$($($wt: $wh0 $($wr0)? $(:: $ws0)* $(<$($wa0),*>)? $(+ $wh $($wr)? $(:: $ws)* $(<$($wa),*>)?)*),+)?]
                    { $($body)* });
            )*
        }

        impl<'q, 'a, $($g),*> $view<'q, 'a, $($g),*>
        where
            $($bound)*
        {
            $(
                $crate::shell::ops!(@batch [$($r)?] [] [$($doc)*] [$blocking] $name [$($($mg),*)?] $this [$($arg: $aty),*] [$out]
                    [$($($wt: $wh0 $($wr0)? $(:: $ws0)* $(<$($wa0),*>)? $(+ $wh $($wr)? $(:: $ws)* $(<$($wa),*>)?)*),+)?]
                    { $($body)* });
            )*
        }
    };

    // Examples: the doc lines of one, with the hidden set-up and teardown the header names
    // (none without `example` in the header), then the method (`$then`).
    (@example [$shell:ident] [$ex:ident, $exty:ty, $ctor:ident, [$($carg:tt)*], $td:ident] [] $lines:tt
        => $($then:tt)*) => {
        $crate::shell::ops!(@fenced [#[doc = ""]] [stringify!($shell)] [
            #[doc = "# let redis = pottery::testing::doctest_redis();"]
            #[doc = concat!("# let ", stringify!($ex), ": ", stringify!($exty), " = This::", stringify!($ctor), "(", stringify!($($carg)*), ")?;")]
        ] $lines [
            #[doc = concat!("# ", stringify!($ex), ".", stringify!($td), "()?;")]
            #[doc = "# Ok::<(), pottery::Error>(())"]
        ] => $($then)*);
    };
    (@example [$shell:ident] $exh:tt [bare] $lines:tt => $($then:tt)*) => {
        $crate::shell::ops!(@fenced [#[doc = ""]] [stringify!($shell)]
            [#[doc = "# let redis = pottery::testing::doctest_redis();"]]
            $lines [#[doc = "# Ok::<(), pottery::Error>(())"]] => $($then)*);
    };
    (@example [$shell:ident] $exh:tt [raw] $lines:tt => $($then:tt)*) => {
        $crate::shell::ops!(@fenced [#[doc = ""]] [stringify!($shell)] [] $lines [] => $($then)*);
    };
    (@aio_example [$m:ident::$shell:ident] $exh:tt => $($then:tt)*) => {
        $crate::shell::ops!($($then)* []);
    };
    (@aio_example [$m:ident::$shell:ident] [$ex:ident, $exty:ty, $ctor:ident, [$($carg:tt)*], $td:ident] [] $lines:tt
        => $($then:tt)*) => {
        $crate::shell::ops!(@fenced [] [stringify!($m), "::", stringify!($shell)] [
            #[doc = "# let redis = pottery::testing::doctest_redis();"]
            #[doc = "# tokio::runtime::Runtime::new().unwrap().block_on(async {"]
            #[doc = concat!("# let ", stringify!($ex), ": ", stringify!($exty), " = This::", stringify!($ctor), "(", stringify!($($carg)*), ").await?;")]
        ] $lines [
            #[doc = concat!("# ", stringify!($ex), ".", stringify!($td), "().await?;")]
            #[doc = "# Ok::<(), pottery::Error>(()) }).unwrap();"]
        ] => $($then)*);
    };
    (@aio_example [$m:ident::$shell:ident] $exh:tt [bare] $lines:tt => $($then:tt)*) => {
        $crate::shell::ops!(@fenced [] [stringify!($m), "::", stringify!($shell)] [
            #[doc = "# let redis = pottery::testing::doctest_redis();"]
            #[doc = "# tokio::runtime::Runtime::new().unwrap().block_on(async {"]
        ] $lines [#[doc = "# Ok::<(), pottery::Error>(()) }).unwrap();"]] => $($then)*);
    };
    (@aio_example [$m:ident::$shell:ident] $exh:tt [raw] $lines:tt => $($then:tt)*) => {
        $crate::shell::ops!(@fenced [] [stringify!($m), "::", stringify!($shell)] [] $lines [] => $($then)*);
    };
    // One fenced example: `This` names the structure, then the hidden set-up, the lines and
    // the hidden teardown.
    (@fenced [$($lead:tt)*] [$($this:tt)*] [$($setup:tt)*] [$($line:tt)*] [$($teardown:tt)*]
        => $($then:tt)*) => {
        $crate::shell::ops!($($then)* [
            $($lead)*
            #[doc = "```"]
            #[doc = concat!("# #[allow(unused_imports)] use pottery::", $($this)*, " as This;")]
            $($setup)*
            $(#[doc = $line])*
            $($teardown)*
            #[doc = "```"]
        ]);
    };

    // The blocking method: the plan run once through the blocking runner, or the steps
    // driven to the end on this thread.
    (@blocking [$($doc:tt)*] [$($r:ident)?] [$blocking:ident] $name:ident [$($mg:tt)*] $this:ident [$($args:tt)*] [$out:ty]
        [$($where:tt)*] { $($body:tt)* } [$($example:tt)*]) => {
        $(#[doc = $doc])*
        $($example)*
        pub fn $name <$($mg)*> (&$this, $($args)*) -> $crate::error::Result<$out>
        where
            $($where)*
        {
            $crate::shell::ops!(@blocking_body [$($r)?] [$blocking] $name $this { $($body)* })
        }
    };
    (@blocking_body [] [$blocking:ident] $name:ident $this:ident { $($body:tt)* }) => {{
        let runner = &$crate::shell::runner::Blocking;
        $crate::shell::runner::block_on_ready(async move {
            let op = $crate::shell::ops!(@probed [$blocking] $name $this { $($body)* });
            $crate::shell::runner::Runner::run(runner, &$this.core.redis, op).await
        })
    }};
    (@blocking_body [$r:ident] [$blocking:ident] $name:ident $this:ident { $($body:tt)* }) => {{
        let $r = &$crate::shell::runner::Blocking;
        $crate::shell::runner::block_on_ready(async move { $($body)* })
    }};

    // The async method: the same plan (or steps), awaited.
    (@aio [$($doc:tt)*] [$($r:ident)?] [$blocking:ident] $name:ident [$($mg:tt)*] $this:ident [$($args:tt)*] [$out:ty]
        [$($where:tt)*] { $($body:tt)* } [$($example:tt)*]) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!(
            "The async form of [`", stringify!($blocking), "::", stringify!($name),
            "`]: the same operation (one definition), awaited."
        )]
        $($example)*
        pub async fn $name <$($mg)*> (&$this, $($args)*) -> $crate::error::Result<$out>
        where
            $($where)*
        {
            $crate::shell::ops!(@aio_body [$($r)?] [$blocking] $name $this { $($body)* })
        }
    };
    // One plan: run in place, not through the `Runner` (whose async future is boxed: rustc
    // #100013 bites generic multi-step code, not this).
    (@aio_body [] [$blocking:ident] $name:ident $this:ident { $($body:tt)* }) => {{
        let op = $crate::shell::ops!(@probed [$blocking] $name $this { $($body)* });
        $this.core.redis.run_async(op).await
    }};
    // The plan, named after its method, unless the near cache answers first (a hit before the
    // plan is built, where the builder allows one): then the method returns the result at once
    // (`return` in the method's body, blocking or async).
    (@probed [$blocking:ident] $name:ident $this:ident { $($body:tt)* }) => {{
        let plan = { $($body)* };
        let mut hit = $crate::near::Hit::new();
        let plan = $crate::near::Probe::probe(plan, &$this.core.redis, &mut hit);
        if let Some(v) = hit.ok {
            return Ok(v);
        }
        if let Some(e) = hit.err {
            return Err(e);
        }
        $crate::batch::IntoOp::into_op(plan)?
            .named(concat!(stringify!($blocking), ".", stringify!($name)))
    }};
    (@aio_body [$r:ident] [$blocking:ident] $name:ident $this:ident { $($body:tt)* }) => {{
        let $r = &$crate::shell::runner::Async;
        async move { $($body)* }.await
    }};

    // The batch method: the same plan, queued; its docs are the entry's first paragraph.
    (@batch [$r:ident] $($rest:tt)*) => {};
    (@batch [] [$($para:tt)*] [r"" $($doc:tt)*] $($rest:tt)*) => {
        $crate::shell::ops!(@batch_fn [$($para)*] $($rest)*);
    };
    (@batch [] [$($para:tt)*] [] $($rest:tt)*) => {
        $crate::shell::ops!(@batch_fn [$($para)*] $($rest)*);
    };
    (@batch [] [$($para:tt)*] [$line:tt $($doc:tt)*] $($rest:tt)*) => {
        $crate::shell::ops!(@batch [] [$($para)* $line] [$($doc)*] $($rest)*);
    };
    (@batch_fn [$($para:tt)*] [$blocking:ident] $name:ident [$($mg:tt)*] $this:ident [$($args:tt)*] [$out:ty]
        [$($where:tt)*] { $($body:tt)* }) => {
        #[doc = concat!("Queues [`", stringify!($blocking), "::", stringify!($name), "`]:")]
        $(#[doc = $para])*
        #[doc = ""]
        #[doc = "Its result is in the [`Pending`](crate::Pending) once the batch ran."]
        pub fn $name <$($mg)*> (&$this, $($args)*) -> $crate::batch::Pending<$out>
        where
            $($where)*
        {
            #[allow(clippy::redundant_closure_call)]
            let op = (|| -> $crate::error::Result<$crate::exec::plan::Op<'a, $out>> {
                let plan = { $($body)* };
                $crate::batch::IntoOp::into_op(plan)
            })();
            $this.queue.push(&$this.core.redis, op)
        }
    };
}
pub(crate) use ops;
