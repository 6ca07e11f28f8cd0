//! Attribute macros for [flotilla](https://docs.rs/flotilla). Use them through the `flotilla`
//! crate (`#[flotilla::task]`), which documents them with examples.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, parse_macro_input};

/// Turns a function into a `flotilla::Task`: a unit struct of the same name that executors
/// can run on a thread, in a worker process or on another machine.
///
/// ```ignore
/// #[flotilla::task]
/// fn resize(path: String, width: u32) -> u64 { /* ... */ }
///
/// executor.submit(resize, ("a.jpg".into(), 200))?; // arguments as one value: a tuple here
/// resize::call("a.jpg".into(), 200);               // the function, called directly
/// ```
///
/// One parameter travels as itself, several as a tuple, none as `()`. Parameters and the return
/// value must be serde types (owned: `String`, not `&str`). The task's stable name is the
/// module path plus the function name; it must be unique in the program (a pool refuses to
/// start if two tasks share one, as two functions of the same name in function bodies of one
/// module would). The unit struct takes the function's name, so neither a parameter nor a
/// local binding in the same scope can share it.
///
/// `#[flotilla::task(internal)]` registers a task that only code naming its type can run
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

/// The attribute's arguments: `internal` and `crate = path`, in any order, comma-separated.
struct Options {
    internal: bool,
    krate: syn::Path,
}

impl Options {
    fn parse(attr: TokenStream2) -> syn::Result<Options> {
        let mut options = Options {
            internal: false,
            krate: syn::parse_quote!(::flotilla),
        };
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("internal") {
                options.internal = true;
                Ok(())
            } else if meta.path.is_ident("crate") {
                options.krate = meta.value()?.parse()?;
                Ok(())
            } else {
                Err(meta.error(
                    "#[flotilla::task] takes no arguments other than `internal` and `crate = path`",
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
                if let syn::Pat::Ident(pat) = &*typed.pat
                    && pat.ident == sig.ident
                {
                    return Err(syn::Error::new(
                        pat.ident.span(),
                        "a parameter cannot have the task's own name: the task becomes a unit \
                         struct of that name, so rename the parameter",
                    ));
                }
                types.push((*typed.ty).clone());
            }
        }
    }
    let vis = &function.vis;
    let name = &sig.ident;
    let attrs = &function.attrs;
    let docs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let inputs = &sig.inputs;
    let output_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let output = &sig.output;
    let body = &function.block;
    let unsafety = &sig.unsafety;
    if unsafety.is_some() {
        return Err(syn::Error::new(
            sig.span(),
            "a flotilla task cannot be an unsafe fn",
        ));
    }
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
    Ok(quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #vis struct #name;

        impl #name {
            /// Calls the task's function directly on this thread.
            #(#attrs)*
            #[allow(clippy::too_many_arguments)]
            #vis fn call(#inputs) #output #body
        }

        impl #krate::__private::Task for #name {
            const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name));
            type Args = #args_ty;
            type Output = #output_ty;

            fn run(&self, args: Self::Args) -> Self::Output {
                #unpack
                #name::call(#(#vars),*)
            }
        }

        // Registers the task by name so that worker processes can find it (nothing without the
        // process layer).
        #krate::__private::register_task!(#name, #entry);
    })
}
