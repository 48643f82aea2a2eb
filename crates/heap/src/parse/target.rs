//! Where the number scanner puts the values of a `[...]` array: straight into their final place by array index,
//! from two threads at once. The node and edge columns are targets (`columns.rs`); so is a plain vector.

/// Takes consecutive values of one array, from the index it was made for on, on a scanner thread.
pub(crate) trait Piece: Send {
    /// What the target keeps once the piece is accepted, beyond the values already in place.
    type Done: Send;

    /// Stores the next value. `false` refuses it — no room, or a value the exact path must report — and the
    /// scanner stops before it: the exact path then reads it again and calls [`Target::put_exact`].
    fn put(&mut self, value: u64) -> bool;

    /// Stores values in order as [`Piece::put`] would, up to the first it refuses; returns how many it stored.
    /// Targets may store whole records at a time; by default it is [`Piece::put_each`].
    #[inline(always)]
    fn put_all(&mut self, values: &[u64]) -> usize {
        self.put_each(values)
    }

    /// Stores values one [`Piece::put`] at a time, up to the first it refuses; returns how many it stored.
    #[inline(always)]
    fn put_each(&mut self, values: &[u64]) -> usize {
        let mut stored = 0;
        while stored < values.len() && self.put(values[stored]) {
            stored += 1;
        }
        stored
    }

    /// How many values were stored, and what the target keeps.
    fn done(self) -> (u64, Self::Done);
}

pub(crate) trait Target {
    type Done: Send;
    type Piece<'a>: Piece<Done = Self::Done>
    where
        Self: 'a;

    /// Writers for the values from array index `first` on and, when `second` is given, from `second` on (the first
    /// then stops at `second`); together they will be offered at most `most` values. A writer refuses values it
    /// has no room for.
    fn pieces(&mut self, first: u64, second: Option<u64>, most: u64) -> (Self::Piece<'_>, Option<Self::Piece<'_>>);

    /// Keeps what an accepted piece did, in array order. The values of a piece that is not accepted (the one
    /// before it stopped early) stay where they were written, and are overwritten or cut off later.
    fn commit(&mut self, done: Self::Done);

    /// Stores value number `index` (always the next one), making room as needed, or says what is wrong with it.
    fn put_exact(&mut self, index: u64, value: u64) -> Result<(), String>;

    /// How many values the array is declared to hold, if the target knows: only a hint, for where to look for
    /// its end.
    fn expected_len(&self) -> Option<u64> {
        None
    }
}

/// All values of an array in a vector of `T` (`u64`, or `u32` where larger values are an error). `refuse_at` makes
/// the value at that index an error (the tests' and the fuzz target's way to check errors raised by a target);
/// `room` bounds the room made ahead for the pieces, to exercise the path where they run out of it.
pub(crate) struct Values<T = u64> {
    pub(crate) values: Vec<T>,
    pub(crate) refuse_at: Option<u64>,
    pub(crate) room: usize,
}

/// An element type of [`Values`].
pub(crate) trait Value: Copy + Default + Send + TryFrom<u64> {}
impl Value for u64 {}
impl Value for u32 {}

impl<T: Value> Values<T> {
    pub(crate) fn new() -> Self {
        Values { values: Vec::new(), refuse_at: None, room: usize::MAX }
    }

    /// The values, once the array has `count` of them.
    pub(crate) fn finish(mut self, count: u64) -> Vec<T> {
        self.values.truncate(count as usize);
        self.values
    }
}

pub(crate) struct ValuesPiece<'a, T> {
    slots: &'a mut [T],
    first: u64,
    refuse_at: Option<u64>,
    count: usize,
}

impl<T: Value> Piece for ValuesPiece<'_, T> {
    type Done = ();

    #[inline(always)]
    fn put(&mut self, value: u64) -> bool {
        if self.refuse_at == Some(self.first + self.count as u64) {
            return false;
        }
        match (self.slots.get_mut(self.count), T::try_from(value)) {
            (Some(slot), Ok(value)) => {
                *slot = value;
                self.count += 1;
                true
            }
            _ => false,
        }
    }

    fn done(self) -> (u64, ()) {
        (self.count as u64, ())
    }
}

impl<T: Value> Target for Values<T> {
    type Done = ();
    type Piece<'a>
        = ValuesPiece<'a, T>
    where
        T: 'a;

    fn pieces(
        &mut self,
        first: u64,
        second: Option<u64>,
        most: u64,
    ) -> (ValuesPiece<'_, T>, Option<ValuesPiece<'_, T>>) {
        let wanted = (first as usize).saturating_add((most as usize).min(self.room));
        if self.values.len() < wanted {
            // `most` can be far more than the array holds (a window that runs past the array's end into the
            // strings): fresh zeroed memory, whose pages are only mapped where values are put, instead of a resize
            // that writes every slot (14 MB and 6 ms on the parse's one thread for the locations at 324 MiB).
            let mut grown = vec![T::default(); wanted];
            grown[..self.values.len()].copy_from_slice(&self.values);
            self.values = grown;
        }
        let len = self.values.len();
        let refuse_at = self.refuse_at;
        let (_, rest) = self.values.split_at_mut((first as usize).min(len));
        match second {
            None => (ValuesPiece { slots: rest, first, refuse_at, count: 0 }, None),
            Some(second) => {
                let at = ((second - first) as usize).min(rest.len());
                let (a, b) = rest.split_at_mut(at);
                (
                    ValuesPiece { slots: a, first, refuse_at, count: 0 },
                    Some(ValuesPiece { slots: b, first: second, refuse_at, count: 0 }),
                )
            }
        }
    }

    fn commit(&mut self, _: ()) {}

    fn put_exact(&mut self, index: u64, value: u64) -> Result<(), String> {
        if self.refuse_at == Some(index) {
            return Err("the target says no".into());
        }
        let value = T::try_from(value).map_err(|_| format!("{value} is out of range"))?;
        let at = index as usize;
        if at >= self.values.len() {
            self.values.resize((at + 1).max(self.values.len() * 2), T::default());
        }
        self.values[at] = value;
        Ok(())
    }
}
