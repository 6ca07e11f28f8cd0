//! The schema of a serde type, traced from its `Deserialize` impl, and a stable hash of it.
//!
//! Two programs agree on a task only if they encode its arguments and result the same way.
//! Type names cannot tell (the compiler does not keep `std::any::type_name` stable, and it
//! ignores the fields), so the schema is traced instead: a [`Deserializer`] that produces no
//! bytes but records what the type asks for: primitives, options, sequences, maps, tuples, and
//! for each struct and enum its kind, its field names in order and its variants in order with
//! their contents. The encoding of that record, hashed, is the fingerprint. The names of the
//! types themselves are left out: renaming a struct does not change how it travels.
//!
//! One call of `deserialize` follows one path through a type, so the tracer runs it again and
//! again, choosing each time an enum variant it has not seen yet (then variants whose contents
//! are not fully known), until every reachable struct and variant has been seen whole. A type
//! that contains itself is cut where it recurs: there an `Option` is `None`, a sequence or map
//! is empty and an enum takes a variant already known to end, so every pass ends.
//!
//! Types whose `Deserialize` needs a self-describing format (`deserialize_any`: untagged or
//! internally tagged enums, `flatten`, `serde_json::Value`) cannot be traced, and cannot travel
//! through flotilla's encoding either; nor can types whose `Deserialize` refuses the
//! placeholder values the tracer feeds it (`1` for integers, empty strings), or that contain
//! themselves with no way to end. For these, [`fingerprint`] falls back to the type's name.

use std::any::TypeId;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

/// How many times a type is deserialized before tracing gives up.
const MAX_PASSES: usize = 4096;

/// How deeply containers may nest in one pass (a type that contains itself with nothing to
/// end it would otherwise recurse for ever).
const MAX_DEPTH: usize = 128;

thread_local! {
    /// Set while this thread traces a type, so that `Deserialize` impls with side effects
    /// (taking over an inherited descriptor) can refuse instead.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is tracing a schema: a `Deserialize` impl that would act on the
/// world (claim a descriptor, connect somewhere) must refuse while this is true.
pub(crate) fn tracing() -> bool {
    TRACING.with(Cell::get)
}

/// The canonical encoding of `T`'s schema, or why it cannot be traced.
pub(crate) fn schema<T: DeserializeOwned>() -> Result<Vec<u8>, String> {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            TRACING.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(TRACING.with(|flag| flag.replace(true)));
    let mut tracer = Tracer::default();
    let mut root = Node::Unknown;
    for _ in 0..MAX_PASSES {
        tracer.changed = false;
        let mut node = Node::Unknown;
        let outcome = T::deserialize(De {
            tracer: &mut tracer,
            out: &mut node,
        });
        tracer.merge_into(&mut root, node);
        if let Some(conflict) = &tracer.conflict {
            return Err(conflict.clone());
        }
        match outcome {
            Ok(_) if tracer.done(&root, &mut HashSet::new()) => {
                let mut out = Vec::new();
                tracer.encode(&root, &mut HashMap::new(), &mut out);
                return Ok(out);
            }
            Ok(_) if !tracer.changed => return Err("tracing made no progress".to_owned()),
            Ok(_) => {}
            Err(err) if !tracer.changed => return Err(err.0),
            Err(_) => {}
        }
    }
    Err(format!("not fully traced after {MAX_PASSES} passes"))
}

/// A stable 64-bit fingerprint of a task: its name and the schemas of its arguments and
/// result (or, where a schema cannot be traced, the type's name).
pub(crate) fn fingerprint<A: DeserializeOwned, O: DeserializeOwned>(name: &str) -> u64 {
    let mut hash = Fnv::default();
    hash.write(b"flotilla task fingerprint 1");
    hash.write_str(name);
    for traced in [part::<A>(), part::<O>()] {
        hash.write(&traced);
    }
    hash.finish()
}

/// One type's share of a fingerprint: a marker, then its schema or its name.
fn part<T: DeserializeOwned>() -> Vec<u8> {
    match schema::<T>() {
        Ok(schema) => {
            let mut out = vec![b'S'];
            push_len(&mut out, schema.len());
            out.extend(schema);
            out
        }
        Err(why) => {
            tracing::debug!(
                ty = std::any::type_name::<T>(),
                why,
                "schema not traced; fingerprinting the type's name"
            );
            let name = std::any::type_name::<T>();
            let mut out = vec![b'N'];
            push_len(&mut out, name.len());
            out.extend(name.as_bytes());
            out
        }
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend(u64::try_from(len).unwrap_or(u64::MAX).to_le_bytes());
}

/// FNV-1a, 64 bits: the same in every build and on every platform, unlike `std`'s hashers.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in [
            &u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes()[..],
            bytes,
        ] {
            for &byte in chunk {
                self.0 ^= u64::from(byte);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    fn write_str(&mut self, text: &str) {
        self.write(text.as_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What one value in the schema is.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    /// Not reached yet.
    Unknown,
    Prim(Prim),
    Option(Box<Node>),
    Seq(Box<Node>),
    Map(Box<Node>, Box<Node>),
    Tuple(Vec<Node>),
    /// A struct or enum, recorded once in the tracer.
    Container(TypeId),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Prim {
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    Bytes,
    Unit,
}

/// A struct or an enum.
#[derive(Debug)]
enum Container {
    Unit,
    NewType(Node),
    Tuple(Vec<Node>),
    Struct(Vec<(&'static str, Node)>),
    Enum(Vec<Variant>),
}

#[derive(Debug)]
struct Variant {
    name: &'static str,
    state: State,
    /// Whether it was once read whole without its enum (or any container) recurring inside:
    /// the variant to take where a value must end.
    ends_alone: bool,
    shape: Shape,
}

/// How far a variant has been explored.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Unvisited,
    /// Entered, but its pass failed before it was seen whole.
    Partial,
    /// Seen whole in some pass: it can end, so it may stand in where its enum recurs.
    Complete,
}

/// What a variant holds.
#[derive(Debug, PartialEq)]
enum Shape {
    Unknown,
    Unit,
    NewType(Node),
    Tuple(Vec<Node>),
    Struct(Vec<(&'static str, Node)>),
}

#[derive(Default)]
struct Tracer {
    containers: HashMap<TypeId, Container>,
    /// The containers being deserialized, outermost first.
    stack: Vec<TypeId>,
    /// How many of the containers on the stack are recurrences: while above zero, choices
    /// are made to end the value (no `Some`, no elements, variants known to end).
    recurring: usize,
    /// How many recurrences were met so far, to tell whether a variant's contents had one.
    recurrences: usize,
    /// Whether this pass learnt anything.
    changed: bool,
    /// Set when two passes disagree about a type (a `Deserialize` impl that is not a plain
    /// function of its input): the schema cannot be trusted.
    conflict: Option<String>,
}

impl Tracer {
    fn ending(&self) -> bool {
        self.recurring > 0
    }

    fn merge_into(&mut self, into: &mut Node, from: Node) {
        match (&mut *into, from) {
            (_, Node::Unknown) => {}
            (Node::Unknown, from) => {
                *into = from;
                self.changed = true;
            }
            (Node::Option(a), Node::Option(b)) | (Node::Seq(a), Node::Seq(b)) => {
                self.merge_into(a, *b);
            }
            (Node::Map(ka, va), Node::Map(kb, vb)) => {
                self.merge_into(ka, *kb);
                self.merge_into(va, *vb);
            }
            (Node::Tuple(a), Node::Tuple(b)) if a.len() == b.len() => {
                for (a, b) in a.iter_mut().zip(b) {
                    self.merge_into(a, b);
                }
            }
            (a, b) if *a == b => {}
            (a, b) => {
                self.conflict = Some(format!("the type was read as {a:?} and as {b:?}"));
            }
        }
    }

    fn merge_all(&mut self, into: &mut [Node], from: Vec<Node>) {
        for (into, from) in into.iter_mut().zip(from) {
            self.merge_into(into, from);
        }
    }

    fn merge_shape(&mut self, into: &mut Shape, from: Shape) {
        match (&mut *into, from) {
            (_, Shape::Unknown) => {}
            (Shape::Unknown, from) => {
                *into = from;
                self.changed = true;
            }
            (Shape::NewType(a), Shape::NewType(b)) => self.merge_into(a, b),
            (Shape::Tuple(a), Shape::Tuple(b)) if a.len() == b.len() => self.merge_all(a, b),
            (Shape::Struct(a), Shape::Struct(b)) if a.len() == b.len() => {
                for ((_, a), (_, b)) in a.iter_mut().zip(b) {
                    self.merge_into(a, b);
                }
            }
            (a, b) if *a == b => {}
            (a, b) => {
                self.conflict = Some(format!("a variant was read as {a:?} and as {b:?}"));
            }
        }
    }

    /// Records the contents of container `key`, first seen as `fresh`.
    fn record(&mut self, key: TypeId, fresh: Container) {
        let Some(known) = self.containers.remove(&key) else {
            self.containers.insert(key, fresh);
            self.changed = true;
            return;
        };
        let merged = match (known, fresh) {
            (Container::Unit, Container::Unit) => Container::Unit,
            (Container::NewType(mut a), Container::NewType(b)) => {
                self.merge_into(&mut a, b);
                Container::NewType(a)
            }
            (Container::Tuple(mut a), Container::Tuple(b)) if a.len() == b.len() => {
                self.merge_all(&mut a, b);
                Container::Tuple(a)
            }
            (Container::Struct(mut a), Container::Struct(b)) if a.len() == b.len() => {
                for ((_, a), (_, b)) in a.iter_mut().zip(b) {
                    self.merge_into(a, b);
                }
                Container::Struct(a)
            }
            (known, fresh) => {
                self.conflict = Some(format!("a type was read as {known:?} and as {fresh:?}"));
                known
            }
        };
        self.containers.insert(key, merged);
    }

    /// Whether everything reachable from `node` is known.
    fn done(&self, node: &Node, seen: &mut HashSet<TypeId>) -> bool {
        match node {
            Node::Unknown => false,
            Node::Prim(_) => true,
            Node::Option(inner) | Node::Seq(inner) => self.done(inner, seen),
            Node::Map(key, value) => self.done(key, seen) && self.done(value, seen),
            Node::Tuple(items) => items.iter().all(|item| self.done(item, seen)),
            Node::Container(key) => {
                if !seen.insert(*key) {
                    return true; // being checked further up
                }
                match self.containers.get(key) {
                    None => false,
                    Some(Container::Unit) => true,
                    Some(Container::NewType(inner)) => self.done(inner, seen),
                    Some(Container::Tuple(items)) => items.iter().all(|i| self.done(i, seen)),
                    Some(Container::Struct(fields)) => {
                        fields.iter().all(|(_, field)| self.done(field, seen))
                    }
                    Some(Container::Enum(variants)) => variants.iter().all(|variant| {
                        variant.state == State::Complete && self.shape_done(&variant.shape, seen)
                    }),
                }
            }
        }
    }

    fn shape_done(&self, shape: &Shape, seen: &mut HashSet<TypeId>) -> bool {
        match shape {
            Shape::Unknown => false,
            Shape::Unit => true,
            Shape::NewType(inner) => self.done(inner, seen),
            Shape::Tuple(items) => items.iter().all(|item| self.done(item, seen)),
            Shape::Struct(fields) => fields.iter().all(|(_, field)| self.done(field, seen)),
        }
    }

    /// The variant of enum `key` to take in this pass.
    fn choose(&mut self, key: TypeId) -> Result<u32, Error> {
        let Some(Container::Enum(variants)) = self.containers.get(&key) else {
            return Err(Error::new("an enum changed kind between passes"));
        };
        let first = |wanted: State| variants.iter().position(|v| v.state == wanted);
        let ending = self
            .ending()
            .then(|| variants.iter().position(|v| v.ends_alone))
            .flatten();
        let unfinished = || {
            variants.iter().position(|variant| {
                variant.state == State::Complete
                    && !self.shape_done(&variant.shape, &mut HashSet::from([key]))
            })
        };
        // Where a value must end, a variant known to end alone; otherwise (and where none is
        // known yet) explore: variants never entered, then ones never read whole, then ones
        // whose contents are not all known. A wrong guess only costs a pass: the depth limit
        // ends it.
        let index = ending
            .or_else(|| first(State::Unvisited))
            .or_else(|| first(State::Partial))
            .or_else(unfinished)
            .unwrap_or(0);
        if let Some(Container::Enum(variants)) = self.containers.get_mut(&key)
            && variants[index].state == State::Unvisited
        {
            variants[index].state = State::Partial;
            self.changed = true;
        }
        u32::try_from(index).map_err(|_| Error::new("too many variants"))
    }

    /// Records what variant `index` of enum `key` held; `whole` if it was read to its end,
    /// `alone` if no container recurred inside it.
    fn record_variant(&mut self, key: TypeId, index: u32, shape: Shape, whole: bool, alone: bool) {
        let Some(Container::Enum(mut variants)) = self.containers.remove(&key) else {
            return;
        };
        if let Some(variant) = usize::try_from(index)
            .ok()
            .and_then(|i| variants.get_mut(i))
        {
            self.merge_shape(&mut variant.shape, shape);
            if whole && variant.state != State::Complete {
                variant.state = State::Complete;
                self.changed = true;
            }
            if whole && alone && !variant.ends_alone {
                variant.ends_alone = true;
                self.changed = true;
            }
        }
        self.containers.insert(key, Container::Enum(variants));
    }

    /// Writes the canonical encoding of `node`: containers are written where first met and
    /// referred to by number after that, so the bytes depend only on the schema.
    fn encode(&self, node: &Node, numbers: &mut HashMap<TypeId, u32>, out: &mut Vec<u8>) {
        match node {
            Node::Unknown => out.push(0),
            Node::Prim(prim) => out.push(prim_tag(*prim)),
            Node::Option(inner) => {
                out.push(30);
                self.encode(inner, numbers, out);
            }
            Node::Seq(inner) => {
                out.push(31);
                self.encode(inner, numbers, out);
            }
            Node::Map(key, value) => {
                out.push(32);
                self.encode(key, numbers, out);
                self.encode(value, numbers, out);
            }
            Node::Tuple(items) => {
                out.push(33);
                self.encode_all(items, numbers, out);
            }
            Node::Container(key) => {
                if let Some(number) = numbers.get(key) {
                    out.push(34);
                    out.extend(number.to_le_bytes());
                    return;
                }
                let number = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
                numbers.insert(*key, number);
                out.push(35);
                match self.containers.get(key) {
                    None => out.push(0),
                    Some(Container::Unit) => out.push(1),
                    Some(Container::NewType(inner)) => {
                        out.push(2);
                        self.encode(inner, numbers, out);
                    }
                    Some(Container::Tuple(items)) => {
                        out.push(3);
                        self.encode_all(items, numbers, out);
                    }
                    Some(Container::Struct(fields)) => {
                        out.push(4);
                        self.encode_fields(fields, numbers, out);
                    }
                    Some(Container::Enum(variants)) => {
                        out.push(5);
                        push_len(out, variants.len());
                        for variant in variants {
                            push_str(out, variant.name);
                            self.encode_shape(&variant.shape, numbers, out);
                        }
                    }
                }
            }
        }
    }

    fn encode_all(&self, items: &[Node], numbers: &mut HashMap<TypeId, u32>, out: &mut Vec<u8>) {
        push_len(out, items.len());
        for item in items {
            self.encode(item, numbers, out);
        }
    }

    fn encode_fields(
        &self,
        fields: &[(&'static str, Node)],
        numbers: &mut HashMap<TypeId, u32>,
        out: &mut Vec<u8>,
    ) {
        push_len(out, fields.len());
        for (name, field) in fields {
            push_str(out, name);
            self.encode(field, numbers, out);
        }
    }

    fn encode_shape(&self, shape: &Shape, numbers: &mut HashMap<TypeId, u32>, out: &mut Vec<u8>) {
        match shape {
            Shape::Unknown => out.push(0),
            Shape::Unit => out.push(1),
            Shape::NewType(inner) => {
                out.push(2);
                self.encode(inner, numbers, out);
            }
            Shape::Tuple(items) => {
                out.push(3);
                self.encode_all(items, numbers, out);
            }
            Shape::Struct(fields) => {
                out.push(4);
                self.encode_fields(fields, numbers, out);
            }
        }
    }
}

fn push_str(out: &mut Vec<u8>, text: &str) {
    push_len(out, text.len());
    out.extend(text.as_bytes());
}

fn prim_tag(prim: Prim) -> u8 {
    match prim {
        Prim::Bool => 1,
        Prim::I8 => 2,
        Prim::I16 => 3,
        Prim::I32 => 4,
        Prim::I64 => 5,
        Prim::I128 => 6,
        Prim::U8 => 7,
        Prim::U16 => 8,
        Prim::U32 => 9,
        Prim::U64 => 10,
        Prim::U128 => 11,
        Prim::F32 => 12,
        Prim::F64 => 13,
        Prim::Char => 14,
        Prim::Str => 15,
        Prim::Bytes => 16,
        Prim::Unit => 17,
    }
}

/// Why a pass stopped.
#[derive(Debug)]
struct Error(String);

impl Error {
    fn new(why: &str) -> Error {
        Error(why.to_owned())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

/// Reads one value, recording its schema in `out`.
struct De<'a> {
    tracer: &'a mut Tracer,
    out: &'a mut Node,
}

impl De<'_> {
    fn prim(self, prim: Prim) {
        *self.out = Node::Prim(prim);
    }

    /// Runs `body` with container `key` on the stack, marking a recurrence.
    fn within<R>(
        tracer: &mut Tracer,
        key: TypeId,
        body: impl FnOnce(&mut Tracer) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if tracer.stack.len() >= MAX_DEPTH {
            return Err(Error::new("the type nests too deeply (or contains itself)"));
        }
        let recurs = tracer.stack.contains(&key);
        tracer.recurrences += usize::from(recurs);
        tracer.stack.push(key);
        tracer.recurring += usize::from(recurs);
        let result = body(tracer);
        tracer.recurring -= usize::from(recurs);
        tracer.stack.pop();
        result
    }

    /// Reads a struct whose value is a `T`: records it as a container and runs `read`, which
    /// returns the value and what the struct held.
    fn structure<T, R>(
        self,
        read: impl FnOnce(&mut Tracer) -> (Result<R, Error>, Container),
    ) -> Result<R, Error> {
        let key = typeid::of::<T>();
        *self.out = Node::Container(key);
        De::within(self.tracer, key, |tracer| {
            let (result, held) = read(tracer);
            tracer.record(key, held);
            result
        })
    }

    /// Reads `count` values as a sequence, each recorded in its own node.
    fn seq<'de, V: Visitor<'de>>(
        tracer: &mut Tracer,
        count: usize,
        visitor: V,
    ) -> (Result<V::Value, Error>, Vec<Node>) {
        let mut nodes = vec![Node::Unknown; count];
        let result = visitor.visit_seq(Seq {
            tracer,
            nodes: &mut nodes,
            next: 0,
        });
        (result, nodes)
    }
}

macro_rules! prims {
    ($($method:ident => $prim:ident, $visit:ident($($value:expr)?);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.prim(Prim::$prim);
                visitor.$visit($($value)?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    prims! {
        deserialize_bool => Bool, visit_bool(false);
        deserialize_i8 => I8, visit_i8(1);
        deserialize_i16 => I16, visit_i16(1);
        deserialize_i32 => I32, visit_i32(1);
        deserialize_i64 => I64, visit_i64(1);
        deserialize_i128 => I128, visit_i128(1);
        deserialize_u8 => U8, visit_u8(1);
        deserialize_u16 => U16, visit_u16(1);
        deserialize_u32 => U32, visit_u32(1);
        deserialize_u64 => U64, visit_u64(1);
        deserialize_u128 => U128, visit_u128(1);
        deserialize_f32 => F32, visit_f32(1.0);
        deserialize_f64 => F64, visit_f64(1.0);
        deserialize_char => Char, visit_char('a');
        deserialize_str => Str, visit_str("");
        deserialize_string => Str, visit_string(String::new());
        deserialize_bytes => Bytes, visit_bytes(&[]);
        deserialize_byte_buf => Bytes, visit_byte_buf(Vec::new());
        deserialize_unit => Unit, visit_unit();
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error::new(
            "the type needs a self-describing format (deserialize_any), which postcard is not",
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut inner = Node::Unknown;
        let result = if self.tracer.ending() {
            visitor.visit_none()
        } else {
            visitor.visit_some(De {
                tracer: self.tracer,
                out: &mut inner,
            })
        };
        *self.out = Node::Option(Box::new(inner));
        result
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let count = usize::from(!self.tracer.ending());
        let (result, mut nodes) = De::seq(self.tracer, count, visitor);
        *self.out = Node::Seq(Box::new(nodes.pop().unwrap_or(Node::Unknown)));
        result
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let (result, nodes) = De::seq(self.tracer, len, visitor);
        *self.out = Node::Tuple(nodes);
        result
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut nodes = [Node::Unknown, Node::Unknown];
        let entries = usize::from(!self.tracer.ending());
        let result = visitor.visit_map(Map {
            tracer: self.tracer,
            nodes: &mut nodes,
            left: entries,
        });
        let [key, value] = nodes;
        *self.out = Node::Map(Box::new(key), Box::new(value));
        result
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.structure::<V::Value, _>(|_| (visitor.visit_unit(), Container::Unit))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.structure::<V::Value, _>(|tracer| {
            let mut inner = Node::Unknown;
            let result = visitor.visit_newtype_struct(De {
                tracer,
                out: &mut inner,
            });
            (result, Container::NewType(inner))
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.structure::<V::Value, _>(|tracer| {
            let (result, nodes) = De::seq(tracer, len, visitor);
            (result, Container::Tuple(nodes))
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.structure::<V::Value, _>(|tracer| {
            let (result, nodes) = De::seq(tracer, fields.len(), visitor);
            (
                result,
                Container::Struct(fields.iter().copied().zip(nodes).collect()),
            )
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let key = typeid::of::<V::Value>();
        *self.out = Node::Container(key);
        if variants.is_empty() {
            return Err(Error::new("an enum without variants has no values"));
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.tracer.containers.entry(key) {
            let fresh = variants
                .iter()
                .map(|&name| Variant {
                    name,
                    state: State::Unvisited,
                    ends_alone: false,
                    shape: Shape::Unknown,
                })
                .collect();
            slot.insert(Container::Enum(fresh));
            self.tracer.changed = true;
        }
        De::within(self.tracer, key, |tracer| {
            let index = tracer.choose(key)?;
            let mut shape = Shape::Unknown;
            let before = tracer.recurrences;
            let result = visitor.visit_enum(Enum {
                tracer: &mut *tracer,
                index,
                shape: &mut shape,
            });
            let alone = tracer.recurrences == before;
            tracer.record_variant(key, index, shape, result.is_ok(), alone);
            result
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a tuple, struct or sequence, each recorded in its node.
struct Seq<'a> {
    tracer: &'a mut Tracer,
    nodes: &'a mut [Node],
    next: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.nodes.get_mut(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(De {
            tracer: self.tracer,
            out: node,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.nodes.len() - self.next)
    }
}

/// At most one entry of a map: its key and value recorded in `nodes`.
struct Map<'a> {
    tracer: &'a mut Tracer,
    nodes: &'a mut [Node; 2],
    left: usize,
}

impl<'de> de::MapAccess<'de> for Map<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(De {
            tracer: self.tracer,
            out: &mut self.nodes[0],
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(De {
            tracer: self.tracer,
            out: &mut self.nodes[1],
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The variant chosen for one enum value.
struct Enum<'a> {
    tracer: &'a mut Tracer,
    index: u32,
    shape: &'a mut Shape,
}

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = Error;
    type Variant = Enum<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Enum<'a>), Error> {
        let value = seed.deserialize(de::value::U32Deserializer::<Error>::new(self.index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        *self.shape = Shape::Unit;
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let mut inner = Node::Unknown;
        let result = seed.deserialize(De {
            tracer: self.tracer,
            out: &mut inner,
        });
        *self.shape = Shape::NewType(inner);
        result
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let (result, nodes) = De::seq(self.tracer, len, visitor);
        *self.shape = Shape::Tuple(nodes);
        result
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (result, nodes) = De::seq(self.tracer, fields.len(), visitor);
        *self.shape = Shape::Struct(fields.iter().copied().zip(nodes).collect());
        result
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    use super::schema;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Point {
        x: u32,
        y: i64,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Dot,
        Circle(Point, f64),
        Polygon {
            corners: Vec<Point>,
            label: Option<String>,
        },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Inner {
        A,
        B(u8),
        C { bytes: serde_bytes::ByteBuf },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Everything {
        tuple: (u8, String, bool),
        list: Vec<Option<Inner>>,
        shapes: BTreeMap<String, Shape>,
        counts: HashMap<u16, Vec<char>>,
        #[serde(with = "serde_bytes")]
        raw: Vec<u8>,
        unit: (),
        wrapped: Wrapper<Inner>,
        pair: Pair,
        nothing: Nothing,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wrapper<T>(T);

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Pair(u8, u8);

    #[derive(Deserialize)]
    struct Nothing;

    /// Recursive with the recursion in the first variant, which a tracer that always takes the
    /// first variant could not end.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Tree {
        Node(Box<Tree>, Box<Tree>, String),
        Leaf(u32),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Dir {
        children: Vec<Dir>,
        parent: Option<Box<Dir>>,
        name: String,
    }

    #[test]
    fn every_kind_of_type_tasks_use_is_traced() {
        let traced = schema::<Everything>().unwrap();
        // Every variant of the nested enums was read whole: their fields are in the schema.
        for name in ["bytes", "corners", "label", "x", "y", "tuple", "nothing"] {
            assert!(
                traced.windows(name.len()).any(|w| w == name.as_bytes()),
                "{name} missing"
            );
        }
        assert!(schema::<(u32, Vec<String>, Option<(u8,)>)>().is_ok());
    }

    #[test]
    fn recursive_types_are_traced() {
        let tree = schema::<Tree>().unwrap();
        assert!(tree.windows(4).any(|w| w == b"Leaf"));
        schema::<Dir>().unwrap();
        schema::<Vec<Tree>>().unwrap();
    }

    #[test]
    fn types_needing_a_self_describing_format_are_refused() {
        #[derive(Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Loose {
            Number(u32),
            Text(String),
        }
        let err = schema::<Loose>().unwrap_err();
        assert!(err.contains("self-describing"), "{err}");
    }

    #[test]
    fn a_type_that_cannot_end_is_refused() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Endless {
            next: Box<Endless>,
        }
        assert!(schema::<Endless>().is_err());
    }
}
