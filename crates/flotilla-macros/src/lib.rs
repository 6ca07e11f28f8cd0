//! Attribute macros for [flotilla](https://docs.rs/flotilla-rs). Use them through the `flotilla`
//! crate (`#[flotilla::task]`), which documents them with examples.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, parse_macro_input};

/// Makes a function a `flotilla::Task` that executors can run on a thread, in a worker
/// process or on another machine, and leaves the function as it was.
///
/// The function stays a plain function, callable as itself (recursion included), like under
/// `#[tracing::instrument]`. Beside it the attribute declares its *task handle*: a unit struct
/// named after the function in UpperCamelCase with `Task` appended (`fib` → `FibTask`,
/// `resize_image` → `ResizeImageTask`), which is what `submit`, `map` and `Process::new`
/// take. `#[flotilla::task(handle = Name)]` picks another name, for when the default one is
/// taken.
///
/// ```ignore
/// #[flotilla::task]
/// fn resize(path: String, width: u32) -> u64 { /* ... */ }
///
/// executor.submit(ResizeTask, ("a.jpg".into(), 200))?; // arguments as one value: a tuple here
/// resize("a.jpg".into(), 200);                          // the function, called directly
/// ```
///
/// (`flotilla::task` has this example runnable.)
///
/// One parameter travels as itself, several as a tuple, none as `()`. Parameters and the return
/// value must be serde types (owned: `String`, not `&str`). The task's stable name is the
/// module path plus the function's name (not the handle's, so `handle = ..` renames nothing a
/// worker sees); it must be unique in the program (a pool refuses to start if two tasks share
/// one, as two functions of the same name in function bodies of one module would).
///
/// `#[flotilla::task(internal)]` registers a task that only code naming its handle can run
/// (`submit(task, args)`, `Process::new(task, args)`): entry points that take a task's name
/// from outside the program, such as `submit_encoded` and cluster workers, do not find it.
///
/// `#[flotilla::task(crate = path)]` names the crate the expansion refers to, `::flotilla` by
/// default: the layer crates use it for tasks of their own (`crate = flotilla_process`), and
/// so can a crate that renames the `flotilla` dependency.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match Options::parse(attr.into()) {
        Ok(options) => options,
        Err(err) => return err.to_compile_error().into(),
    };
    let function = parse_macro_input!(item as ItemFn);
    match expand(function, &options) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// The attribute's arguments: `internal`, `crate = path` and `handle = Name`, in any order,
/// comma-separated.
struct Options {
    internal: bool,
    krate: syn::Path,
    handle: Option<syn::Ident>,
}

impl Options {
    fn parse(attr: TokenStream2) -> syn::Result<Options> {
        let mut options = Options {
            internal: false,
            krate: syn::parse_quote!(::flotilla),
            handle: None,
        };
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("internal") {
                options.internal = true;
                Ok(())
            } else if meta.path.is_ident("crate") {
                options.krate = meta.value()?.parse()?;
                Ok(())
            } else if meta.path.is_ident("handle") {
                options.handle = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error(
                    "#[flotilla::task] takes no arguments other than `internal`, `crate = path` \
                     and `handle = Name`",
                ))
            }
        });
        syn::parse::Parser::parse2(parser, attr)?;
        Ok(options)
    }
}

fn expand(function: ItemFn, options: &Options) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "a flotilla task must be a plain function; async tasks are not supported",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a flotilla task cannot be generic: workers look it up by one name",
        ));
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "a flotilla task is a free function, not a method",
                ));
            }
            FnArg::Typed(typed) => {
                types.push((*typed.ty).clone());
            }
        }
    }
    if sig.unsafety.is_some() {
        return Err(syn::Error::new(
            sig.span(),
            "a flotilla task cannot be an unsafe fn",
        ));
    }
    let vis = &function.vis;
    let name = &sig.ident;
    let handle = match &options.handle {
        Some(handle) => handle.clone(),
        None => syn::Ident::new(&handle_name(&name.unraw().to_string()), name.span()),
    };
    // `#[cfg]` on the function applies to everything the attribute adds beside it.
    let cfgs: Vec<_> = function
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();
    let output_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let vars: Vec<_> = (0..types.len())
        .map(|i| format_ident!("__flotilla_arg{}", i, span = Span::mixed_site()))
        .collect();
    let (args_ty, unpack) = match types.len() {
        1 => {
            let ty = &types[0];
            let var = &vars[0];
            (quote!(#ty), quote!(let #var = args;))
        }
        _ => (quote!((#(#types,)*)), quote!(let (#(#vars,)*) = args;)),
    };
    let krate = &options.krate;
    let entry = if options.internal {
        quote!(internal)
    } else {
        quote!(of)
    };
    let doc = format!(
        " The task handle of [`{name}`]: pass it to `submit`, `map` or `Process::new` to run \
         `{name}` on an executor. Registered as `{name}` in this module."
    );
    Ok(quote! {
        #function

        #(#cfgs)*
        #[doc = #doc]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #vis struct #handle;

        #(#cfgs)*
        impl #krate::__private::Task for #handle {
            const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name));
            type Args = #args_ty;
            type Output = #output_ty;

            fn run(&self, args: Self::Args) -> Self::Output {
                #unpack
                #name(#(#vars),*)
            }
        }

        // Registers the task by name so that worker processes can find it (nothing without the
        // process layer).
        #(#cfgs)*
        #krate::__private::register_task!(#handle, #entry);
    })
}

/// `resize_image` → `ResizeImageTask`: the function's name in UpperCamelCase, then `Task`.
fn handle_name(function: &str) -> String {
    let mut out = String::new();
    for part in function.split('_').filter(|part| !part.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out.push_str("Task");
    out
}

/// Derives `flotilla::shared::Plain` for a struct that can live in shared memory; see that
/// trait (re-exported as `flotilla::shared::Plain`) for the rules and examples.
///
/// The struct must be `#[repr(C)]` or `#[repr(transparent)]`, not generic, with `Plain` fields
/// and no padding; each rule is checked at compile time. `#[plain(crate = path)]` names the
/// path of the `shared` module, `::flotilla::shared` by default.
///
/// (`flotilla::shared::Plain` has runnable examples.)
#[proc_macro_derive(Plain, attributes(plain))]
pub fn derive_plain(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::DeriveInput);
    match expand_plain(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand_plain(input: &syn::DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let syn::Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            name.span(),
            "#[derive(Plain)] is for structs: an enum has invalid bit patterns, a union may \
             have uninitialised bytes",
        ));
    };
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(Plain)] cannot check a generic struct for padding: implement `Plain` by \
             hand (an `unsafe impl`, see its `# Safety`)",
        ));
    }
    let mut repr_ok = false;
    let mut path: syn::Path = syn::parse_quote!(::flotilla::shared);
    for attr in &input.attrs {
        if attr.path().is_ident("repr") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                    repr_ok = true;
                } else if meta.input.peek(syn::token::Paren) {
                    // `align(n)` / `packed(n)`: their argument is not ours to read.
                    let _ = meta.input.parse::<proc_macro2::Group>()?;
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("plain") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    path = meta.value()?.parse()?;
                    Ok(())
                } else {
                    Err(meta.error("#[plain] takes only `crate = path`"))
                }
            })?;
        }
    }
    if !repr_ok {
        return Err(syn::Error::new(
            name.span(),
            "#[derive(Plain)] needs #[repr(C)] or #[repr(transparent)]: without it the field \
             order and padding are the compiler's choice",
        ));
    }
    let types: Vec<_> = data.fields.iter().map(|field| &field.ty).collect();
    let padding = format!(
        "`{name}` has padding bytes, which cannot be shared: reorder its fields (largest \
         first) or add explicit filler fields"
    );
    Ok(quote! {
        const _: () = {
            fn __flotilla_fields_are_plain()
            where
                #(#types: #path::Plain,)*
            {
            }
            ::core::assert!(
                ::core::mem::size_of::<#name>() == 0 #(+ ::core::mem::size_of::<#types>())*,
                #padding
            );
        };
        // SAFETY: checked above: `repr(C)`/`repr(transparent)`, every field `Plain`, and the
        // struct's size the sum of its fields' sizes, so it has no padding.
        unsafe impl #path::Plain for #name {}
    })
}
