//! One definition per operation, three surfaces.
//!
//! A structure's operations are written once, in an [`ops!`] table next to its `Core` (the
//! plans: request plus decoder). Each entry gives the operation's docs, its signature, the
//! plan it runs and its examples; the table produces from it:
//!
//! * the blocking method (`RedisDict::insert`), which runs the plan with `Redis::run`;
//! * the async method (`aio::RedisDict::insert`), which runs the same plan with
//!   `Redis::run_async`;
//! * the batch method (`DictOps::insert`, from [`Batch::on`](crate::Batch::on)), which queues
//!   the same plan and hands back a [`Pending`](crate::Pending).
//!
//! So adding an operation is one edit, and the three surfaces cannot drift apart. What is not
//! one plan (iterators, the dict's `entry`, constructors, anything that loops or waits) is
//! written per shell, next to the table.

/// The batch view of a structure: the type [`Batch::on`](crate::Batch::on) returns, and the
/// [`Batchable`](crate::Batchable) impls of its blocking and async shells. Its methods come
/// from the structure's [`ops!`] tables.
///
/// ```text
/// views! {
///     /// docs of the view
///     DictOps<K, V> on Core<K, V>, for [RedisDict, aio::RedisDict]
///         where [K: Serialize + DeserializeOwned + Send, V: Serialize + DeserializeOwned + Send];
/// }
/// ```
macro_rules! views {
    // The `Batchable` impl of one shell.
    (@shell $shell:ty, $view:ident, [$($g:ident),*], [$($bound:tt)*]) => {
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
    (
        $(#[$vmeta:meta])*
        $view:ident<$($g:ident),*> on $core:ty, for [$blocking:ident, $($aio:ident)::+]
            where [$($bound:tt)*];
    ) => {
        $(#[$vmeta])*
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

        $crate::shell::views!(@shell $blocking<$($g),*>, $view, [$($g),*], [$($bound)*]);
        $crate::shell::views!(@shell $($aio)::+<$($g),*>, $view, [$($g),*], [$($bound)*]);
    };
}
pub(crate) use views;

/// A table of operations, each defined once: it produces the blocking, the async and the
/// batch method of every entry, for every listed structure (a list and a deque share most of
/// theirs).
///
/// An entry is the operation's docs (shared by the blocking and the async method), its
/// signature with the result type `T` of a successful call, the `Core` plan it runs (an `Op`,
/// or a `Result<Op>` when making it can fail), then its blocking example and, optionally, its
/// async example. In an example, `This` names the structure of the surface (`RedisList` or
/// `RedisDeque`, `aio::RedisList`…), for the tables that serve several:
///
/// ```text
/// ops! {
///     Core<K, V>, [K, V] where [K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned]
///         batch where [K: Serialize + DeserializeOwned + Send, V: Serialize + DeserializeOwned + Send]
///         for [DictOps, RedisDict, aio::RedisDict];
///
///     /// Sets `k` to `v`, returning the previous value.
///     fn insert(k: K, v: V) -> Option<V> = |core| core.insert(&k, &v),
///     example {
///         /// ```
///         /// assert_eq!(d.insert("a".into(), 1)?, None);
///         /// ```
///     }
///     aio {
///         /// ```
///         /// assert_eq!(d.insert("a".into(), 1).await?, None);
///         /// ```
///     };
/// }
/// ```
macro_rules! ops {
    (
        $core:ty, [$($g:ident),*] where [$($bound:tt)*] batch where [$($bbound:tt)*]
            for $([$($target:tt)*]),+ ;
        $($entries:tt)*
    ) => {
        $crate::shell::ops!(@targets [$core, [$($g),*], [$($bound)*], [$($bbound)*]]
            { $($entries)* } $([$($target)*])+);
    };
    (@targets [$($common:tt)*] { $($entries:tt)* }) => {};
    (@targets [$($common:tt)*] { $($entries:tt)* } [$($target:tt)*] $($rest:tt)*) => {
        $crate::shell::ops!(@one [$($common)*] [$($target)*] $($entries)*);
        $crate::shell::ops!(@targets [$($common)*] { $($entries)* } $($rest)*);
    };
    (
        @one [$core:ty, [$($g:ident),*], [$($bound:tt)*], [$($bbound:tt)*]]
            [$view:ident, $blocking:ident, $aio_mod:ident::$aio:ident]
        $(
            $(#[$doc:meta])*
            fn $name:ident $(<$($mg:ident),*>)? ($($arg:ident: $aty:ty),* $(,)?) -> $out:ty
                $(where [$($mb:tt)*])?
                = |$c:ident| $op:expr,
            example { #[$bfence:meta] $(#[$bex:meta])* }
            $(aio { #[$afence:meta] $(#[$aex:meta])* })?
            ;
        )*
    ) => {
        // The blocking and async methods: each runs the plan once, through a runner.
        $crate::shell::steps!(@one [$core, [$($g),*], [$($bound)*]] [$blocking, $aio_mod::$aio]
            $(
                $(#[$doc])*
                fn $name $(<$($mg),*>)? ($($arg: $aty),*) -> $out
                    $(where [$($mb)*])?
                    = |$c, runner| async move {
                        let op = $crate::batch::IntoOp::into_op($op)?
                            .named(concat!(stringify!($blocking), ".", stringify!($name)));
                        $crate::shell::runner::Runner::run(runner, &$c.redis, op).await
                    },
                example { #[$bfence] $(#[$bex])* }
                $(aio { #[$afence] $(#[$aex])* })?
                ;
            )*
        );

        impl<'q, 'a, $($g),*> $view<'q, 'a, $($g),*>
        where
            $($bbound)*
        {
            $(
                #[doc = concat!(
                    "Queues [`", stringify!($blocking), "::", stringify!($name),
                    "`]; its result is in the [`Pending`](crate::Pending) once the batch ran."
                )]
                pub fn $name $(<$($mg),*>)? (&self, $($arg: $aty),*) -> $crate::batch::Pending<$out>
                $(where $($mb)*)?
                {
                    let $c: &'a $core = self.core;
                    #[allow(clippy::redundant_closure_call)]
                    let op = (|| -> $crate::error::Result<$crate::exec::plan::Op<'a, $out>> {
                        $crate::batch::IntoOp::into_op($op)
                    })();
                    self.queue.push(&self.core.redis, op)
                }
            )*
        }
    };
}
pub(crate) use ops;

/// A table of operations made of several steps (plans run one after another by a `Runner`,
/// such as a set algebra over two servers): each entry is defined once and produces the
/// blocking and the async method; these are not batchable. The entries read as in [`ops!`],
/// but the body is a future over the core and a runner `r`:
///
/// ```text
/// steps! {
///     Core<T>, [T] where [T: Serialize + DeserializeOwned + Send] for [RedisSet, aio::RedisSet];
///
///     /// `self ∪ other`.
///     fn union<'a>(other: impl IntoSetOperand<'a, T>) -> HashSet<T> where [T: Eq + Hash]
///         = |core, r| core.algebra_decoded(r, Algebra::Union, other.into_operand()),
///     example { /// ``` … }
///     aio { /// ``` … };
/// }
/// ```
macro_rules! steps {
    (
        $core:ty, [$($g:ident),*] where [$($bound:tt)*] for $([$($target:tt)*]),+ ;
        $($entries:tt)*
    ) => {
        $crate::shell::steps!(@targets [$core, [$($g),*], [$($bound)*]]
            { $($entries)* } $([$($target)*])+);
    };
    (@targets [$($common:tt)*] { $($entries:tt)* }) => {};
    (@targets [$($common:tt)*] { $($entries:tt)* } [$($target:tt)*] $($rest:tt)*) => {
        $crate::shell::steps!(@one [$($common)*] [$($target)*] $($entries)*);
        $crate::shell::steps!(@targets [$($common)*] { $($entries)* } $($rest)*);
    };
    (
        @one [$core:ty, [$($g:ident),*], [$($bound:tt)*]]
            [$blocking:ident, $aio_mod:ident::$aio:ident]
        $(
            $(#[$doc:meta])*
            fn $name:ident $(<$($mg:tt),*>)? ($($arg:ident: $aty:ty),* $(,)?) -> $out:ty
                $(where [$($mb:tt)*])?
                = |$c:ident, $r:ident| $body:expr,
            example { #[$bfence:meta] $(#[$bex:meta])* }
            $(aio { #[$afence:meta] $(#[$aex:meta])* })?
            ;
        )*
    ) => {
        impl<$($g),*> $blocking<$($g),*>
        where
            $($bound)*
        {
            $(
                $(#[$doc])*
                ///
                #[$bfence]
                #[doc = concat!(
                    "# #[allow(unused_imports)] use pottery::", stringify!($blocking), " as This;"
                )]
                $(#[$bex])*
                pub fn $name $(<$($mg),*>)? (&self, $($arg: $aty),*) -> $crate::error::Result<$out>
                $(where $($mb)*)?
                {
                    let $c: &$core = &self.core;
                    let $r = &$crate::shell::runner::Blocking;
                    $crate::shell::runner::block_on_ready($body)
                }
            )*
        }

        impl<$($g),*> $aio_mod::$aio<$($g),*>
        where
            $($bound)*
        {
            $(
                $(#[$doc])*
                ///
                #[doc = concat!(
                    "The async form of [`", stringify!($blocking), "::", stringify!($name),
                    "`]: the same operation (one definition), awaited."
                )]
                $(
                    #[$afence]
                    #[doc = concat!(
                        "# #[allow(unused_imports)] use pottery::", stringify!($aio_mod), "::",
                        stringify!($aio), " as This;"
                    )]
                    $(#[$aex])*
                )?
                pub async fn $name $(<$($mg),*>)? (&self, $($arg: $aty),*) -> $crate::error::Result<$out>
                $(where $($mb)*)?
                {
                    let $c: &$core = &self.core;
                    let $r = &$crate::shell::runner::Async;
                    $body.await
                }
            )*
        }
    };
}
pub(crate) use steps;
