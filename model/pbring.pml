/* SPDX-License-Identifier: MIT */
/*
 * pbring ring protocol (docs/FORMAT.md §5-§9), multi-producer mode, as a
 * Promela model for spin. model/README.md says what is modelled, what is
 * abstracted and how it maps to FORMAT.md; model/check.sh runs it.
 *
 * Participants: NPROD producers (claim by fetch-add, pending words, BUSY,
 * commit by CAS), a gating reader, a lossy reader, and a killer that may,
 * at any step of any producer, kill it (its liveness lock is released and
 * it takes no further step), take its lock away while it keeps running
 * (the late-commit case of §7.4), or restart a killed producer on the
 * same entry (the newcomer reaps its predecessor first, §8.3). Readers and
 * producers recover stuck sequences as in §8.2.
 *
 * Claim and cursors are exact small integers, as they are exact 64-bit
 * numbers in the protocol; commit and pending words hold sequences modulo
 * M, like the 62-bit field of the real words, and the run starts at
 * SEQ_BASE = M - 2 so that they wrap within NMSG messages.
 *
 * Options (spin -DNAME=value): the sizes below, the fault budgets, GATING
 * and LOSSY (0 leaves that reader out), and (model/README.md, "Findings"):
 * RECOVER_GATED=0 removes the gating check from recovery (§8.2), which
 * loses a committed message for the gating reader; LATER_IS_DEAD=0 removes
 * from begin (§7.3) the rule that a slot holding a later sequence means
 * EOWNERDEAD, and a producer that lost its lock can then wait for that
 * slot forever; STRICT_PAYLOAD=1 also counts as torn a payload written
 * late, by a producer that lost its lock, into a slot a later sequence
 * has taken (FORMAT.md promises nothing there; by default the model
 * tolerates it).
 */

#ifndef N
#define N 2 /* slot_count */
#endif
#ifndef M
#define M 5 /* commit and pending words hold sequences mod M; M > 2 N */
#endif
#ifndef NMSG
#define NMSG 4 /* sequences claimed in a run */
#endif
#define NPROD 2 /* producer entries (the killer below names each) */
#ifndef KILLS
#define KILLS 1 /* producers killed: lock released, no further step */
#endif
#ifndef ZOMBIES
#define ZOMBIES 0 /* producers that lose their lock but keep running */
#endif
#ifndef RESTARTS
#define RESTARTS 1 /* killed producers restarted on their entry */
#endif
#ifndef LOSSY
#define LOSSY 1
#endif
#ifndef GATING
#define GATING 1 /* 0: no gating reader; producers run free */
#endif
#ifndef RECOVER_GATED
#define RECOVER_GATED 1 /* 0: recovery without the §8.2 gating check */
#endif
#ifndef LATER_IS_DEAD
#define LATER_IS_DEAD 1 /* 0: §7.3 without the later-sequence check */
#endif
#ifndef STRICT_PAYLOAD
#define STRICT_PAYLOAD 0 /* 1: a late payload write also counts as torn */
#endif
#if STRICT_PAYLOAD
#define LATE_OK false
#else
#define LATE_OK late_payload
#endif

#define SEQ_BASE (M - 2)	  /* the first sequence (seq_base) */
#define SEQ_END (SEQ_BASE + NMSG) /* producers claim no further */
#define G(s) ((s) - SEQ_BASE)	  /* index of s in the ghost arrays */
#define NONE 255

/* Slot commit word (§6.1): (seq mod M) << 2 | state; 0 = EMPTY. */
#define EMPTY 0
#define ST_DONE 1
#define ST_ABAN 2
#define ST_BUSY 3
#define W(s, st) ((((s) % M) << 2) | (st))
#define SLOT(s) ((s) % N)

/* Producer pending word (§5.3). */
#define IDLE 0
#define CLAIMING 1
#define PSEQ(s) W(s, 2)

/* d = (seq(v) - s) mod M: 0 about s; in (0, M/2) about a later one. */
#define DIST(v, s) ((((v) >> 2) + M - ((s) % M)) % M)
#define LATER(v, s) ((v) != EMPTY && DIST(v, s) > 0 && 2 * DIST(v, s) < M)

/* The slot of s holds its finished previous occupant (§7.3). */
#define PREV_FINISHED(s, v)                                                    \
	((G(s) < N && (v) == EMPTY) ||                                         \
	 (G(s) >= N &&                                                         \
	  ((v) == W((s) - N, ST_DONE) || (v) == W((s) - N, ST_ABAN))))

/* Sequence s may be written: the gating reader released s - N (§7.2). */
#if GATING
#define WRITABLE(s) ((s) < gcur + N)
#else
#define WRITABLE(s) true
#endif

/* Outcomes of recover() */
#define R_GO 0
#define R_NOTSTUCK 1
#define R_ALIVE 2
#define R_DONE 3
#define R_WAIT 4
#define R_RECOVERED 5
#define R_RACE 6

/* --- shared words -------------------------------------------------------- */
byte claim = SEQ_BASE; /* control block claim (§4) */
byte commit[N];	       /* slot commit words (§6.1) */
byte payload[N];       /* which sequence's bytes a slot holds */
byte pending[NPROD];   /* producer entries' pending words (§5.3) */
bool lockheld[NPROD];  /* an entry's liveness lock is held (§5.1) */
byte gcur = SEQ_BASE;  /* the gating reader's published cursor (§5.4) */

/* --- the killer ------------------------------------------------------------ */
bool running[NPROD];   /* a producer instance runs on the entry */
bool kill[NPROD];      /* the instance dies before its next step */
bool dead_done[NPROD]; /* the killed instance has stopped */
bool zombie[NPROD];    /* lost its lock, runs on */
byte kills = KILLS, zombies = ZOMBIES, restarts = RESTARTS;

/* --- ghost state for the properties ---------------------------------------- */
bit committed[NMSG]; /* a commit CAS to DONE(s) succeeded */
bit abandoned[NMSG]; /* a recovery CAS to ABANDONED(s) succeeded */
bit deliv_g[NMSG];   /* delivered to the gating reader */
bit deliv_l[NMSG];   /* delivered to the lossy reader */
bool lapped_g;	     /* the gating reader met a later sequence */
bool late_payload;   /* a lock-less producer wrote into a slot that a
		      * later sequence had taken (model/README.md) */

/* Some producer lost its lock (died or not). Before that, every claimed
 * sequence has a claimant whose pending word names it and whose lock is
 * held, so a recovery attempt finds it alive or finds the sequence
 * published and changes nothing: readers try only after a fault, which
 * keeps the state space small (model/README.md). */
#define FAULTED (kills + zombies < KILLS + ZOMBIES)

/*
 * recover(rs) (§8.2): the outcome in res. Uses the caller's local v. Each
 * shared access is a step of its own (but see probe).
 */
/* Entry e may own rs: its pending word (A6) names rs or CLAIMING, and its
 * lock is held. The load and the lock probe are one step here: the
 * outcome of a recovery does not depend on a change between them (the
 * pending word read is not used afterwards; a death in between gives
 * the same continuation as a death just before). */
#define CLAIMANT(p, rs) ((p) == CLAIMING || (p) == PSEQ(rs))

inline probe(e, rs, res)
{
	atomic {
		if
		:: CLAIMANT(pending[e], rs) && lockheld[e] -> res = R_ALIVE
		:: else -> skip
		fi
	}
}

inline recover(rs, res)
{
	res = R_GO;
	if
	:: !(rs < claim) -> res = R_NOTSTUCK /* A3 */
	:: else ->
		probe(0, rs, res);
		if
		:: res == R_GO -> probe(1, rs, res)
		:: else -> skip
		fi
	fi;
	if
	:: res == R_GO ->
		v = commit[SLOT(rs)];
		if
		:: v == W(rs, ST_DONE) || v == W(rs, ST_ABAN) -> res = R_DONE
		:: v != W(rs, ST_BUSY) && !PREV_FINISHED(rs, v) -> res = R_WAIT
#if RECOVER_GATED
		/* never past a gating reader */
		:: v != W(rs, ST_BUSY) && PREV_FINISHED(rs, v) &&
		   !WRITABLE(rs) -> res = R_WAIT
#endif
		:: else ->
			atomic { /* CAS to ABANDONED(rs), R5 */
				if
				:: commit[SLOT(rs)] == v ->
					commit[SLOT(rs)] = W(rs, ST_ABAN);
					assert(!committed[G(rs)]);
					abandoned[G(rs)] = 1;
					res = R_RECOVERED
				:: else -> res = R_RACE
				fi
			}
		fi
	:: else -> skip
	fi;
	v = 0
}

/* The full sequence whose low bits pending word pw holds (§8.3). */
inline pending_seq(pw, out)
{
	out = claim - 1;
	out = out - (((out % M) + M - (pw >> 2)) % M)
}

/* §7.3 begin: wait for the previous occupant (recovering it if stuck),
 * then CAS it to BUSY(s); ok tells. */
inline begin(s, ok)
{
	v = commit[SLOT(s)];
	do
	:: PREV_FINISHED(s, v) -> break
	:: !PREV_FINISHED(s, v) && (v == W(s, ST_ABAN)
#if LATER_IS_DEAD
				     || LATER(v, s)
#endif
				     ) ->
		assert(zombie[id]); /* taken for dead: it lost its lock */
		break
	:: else ->
		if
		:: atomic { commit[SLOT(s)] != v -> v = commit[SLOT(s)] }
		:: FAULTED && G(s) >= N ->
			rs = s - N;
			recover(rs, res);
			rs = 0;
			v = commit[SLOT(s)]
		fi
	od;
	atomic { /* CAS(v -> BUSY(s)), then fence R4 */
		if
		:: PREV_FINISHED(s, v) && commit[SLOT(s)] == v ->
			commit[SLOT(s)] = W(s, ST_BUSY);
			ok = true
		:: else -> ok = false
		fi
	}
}

/* §7.4 commit: CAS BUSY(s) -> DONE(s), R1; ok tells. */
inline commit_seq(s, ok)
{
	atomic {
		if
		:: commit[SLOT(s)] == W(s, ST_BUSY) ->
			commit[SLOT(s)] = W(s, ST_DONE);
			assert(!abandoned[G(s)]); /* never committed late */
			committed[G(s)] = 1;
			ok = true
		:: else -> ok = false
		fi
	}
}

proctype Producer(byte id; bit restarted)
{
	byte s, c, v, p, res, rs;
	bool ok;

	{
		lockheld[id] = true; /* join: the lock first (§5.1) */
		if
		:: restarted -> /* reap the dead predecessor (§8.3) */
			p = pending[id];
			pending[id] = IDLE;
			if
			:: (p & 3) == 2 ->
				pending_seq(p, rs);
				recover(rs, res)
			:: else -> skip
			fi
		:: else -> skip
		fi;
		do
		:: true ->
			c = claim; /* pre-check: wait_space(claim) (§7.1) */
			if
			:: c >= SEQ_END -> break /* the run is claimed */
			:: c < SEQ_END && WRITABLE(c) -> c = 0
			fi;
			pending[id] = CLAIMING;
			atomic { /* fetch_add(claim), R3 */
				if
				:: claim < SEQ_END -> s = claim; claim++
				:: else -> s = NONE
				fi
			}
			if
			:: s == NONE -> pending[id] = IDLE; break
			:: else -> skip
			fi;
			pending[id] = PSEQ(s);
			WRITABLE(s); /* wait_space(s) (§7.2) */
			begin(s, ok);
			if
			:: ok ->
				atomic { /* header and payload */
					payload[SLOT(s)] = s;
					/* only into its own slot, unless it
					 * lost its lock */
					assert(zombie[id] ||
					       commit[SLOT(s)] == W(s, ST_BUSY));
					late_payload = late_payload ||
						commit[SLOT(s)] != W(s, ST_BUSY)
				}
				commit_seq(s, ok);
				/* a failed (late) commit: it was reclaimed,
				 * so it must have lost its lock */
				assert(ok || (zombie[id] && abandoned[G(s)]))
			:: else -> assert(zombie[id])
			fi;
			if
			:: ok -> pending[id] = IDLE; s = 0 /* R6 */
			:: else -> break /* EOWNERDEAD: it touches the entry no
					  * more and can only be closed (§7.4) */
			fi
		od;
		running[id] = false
	} unless {
		kill[id] -> running[id] = false; dead_done[id] = true
	}
}

/* The killer's moves on entry i, each within its budget. */
#define KILL(i)                                                                \
	:: atomic {                                                            \
		kills > 0 && running[i] && !kill[i] -> kill[i] = true;         \
		lockheld[i] = false;                                           \
		kills--                                                        \
	}
#define LOSE_LOCK(i)                                                           \
	:: atomic {                                                            \
		zombies > 0 && running[i] && !kill[i] && lockheld[i] &&        \
			!zombie[i] -> lockheld[i] = false;                     \
		zombie[i] = true;                                              \
		zombies--                                                      \
	}
#define RESTART(i)                                                             \
	:: atomic {                                                            \
		restarts > 0 && dead_done[i] -> dead_done[i] = false;          \
		kill[i] = false;                                               \
		restarts--;                                                    \
		running[i] = true;                                             \
		run Producer(i, 1)                                             \
	}

active proctype Killer()
{
end:
	do
	KILL(0)
	KILL(1)
	LOSE_LOCK(0)
	LOSE_LOCK(1)
	RESTART(0)
	RESTART(1)
	od
}

#if GATING
active proctype GatingReader()
{
	byte v, d, res, rs;

	do
	:: gcur >= SEQ_END -> break
	:: else ->
		/* A1, then (for a message) the payload: one step, as
		 * nothing but a lock-less writer touches this slot's
		 * payload until the release below */
		atomic {
			v = commit[SLOT(gcur)];
			if
			:: v == W(gcur, ST_DONE) ->
				d = payload[SLOT(gcur)];
				/* whole, committed, not abandoned, once */
				assert(d == gcur || LATE_OK);
				assert(committed[G(gcur)] &&
				       !abandoned[G(gcur)]);
				assert(!deliv_g[G(gcur)]);
				deliv_g[G(gcur)] = 1;
				d = 0
			:: else -> skip
			fi
		}
		if
		:: v == W(gcur, ST_ABAN) -> /* counted, passed over */
			assert(!committed[G(gcur)]);
			gcur++
		:: v == W(gcur, ST_DONE) ->
			gcur++ /* release: store_release(cursor), R2 */
		:: LATER(v, gcur) ->
			lapped_g = true; /* a gating reader is never lapped */
			assert(!lapped_g)
		:: else ->
end_wait:		if /* wait for the slot to change, or after a while
			    * recover its sequence (§8.2) */
			:: commit[SLOT(gcur)] != v -> skip
			:: FAULTED && gcur < claim ->
				rs = gcur;
				recover(rs, res);
				rs = 0
			fi
		fi;
		v = 0;
		res = 0
	od
}

#endif

#if LOSSY
active proctype LossyReader()
{
	byte lc = SEQ_BASE, v, v2, d, res, rs, c;

	do
	:: lc >= SEQ_END -> break
	:: else ->
		v = commit[SLOT(lc)]; /* A1 */
		if
		:: v == W(lc, ST_ABAN) -> lc++
		:: v == W(lc, ST_DONE) ->
			d = payload[SLOT(lc)];
			v2 = commit[SLOT(lc)]; /* re-check at release, A4 */
			if
			:: v2 == v -> /* delivered: then it was lc, whole */
				assert(d == lc || LATE_OK);
				assert(committed[G(lc)] && !abandoned[G(lc)]);
				assert(!deliv_l[G(lc)]);
				deliv_l[G(lc)] = 1
			:: else -> skip /* overwritten while held: lost */
			fi;
			d = 0;
			v2 = 0;
			lc++
		:: LATER(v, lc) -> /* lapped: resync (§9.4) */
			c = claim;
			if
			:: c > lc + N / 2 -> lc = c - N / 2
			:: else -> lc++
			fi;
			c = 0
		:: else ->
end_wait:		if
			:: commit[SLOT(lc)] != v -> skip
			:: FAULTED && lc < claim ->
				rs = lc;
				recover(rs, res);
				rs = 0
			fi
		fi;
		v = 0;
		res = 0
	od
}
#endif

/* Once nothing can move: every claimed sequence was committed or
 * abandoned, never both, and the gating reader received exactly the
 * committed ones, each once. */
active proctype Final()
{
	byte s;

	timeout ->
	atomic {
#if GATING
		assert(gcur == claim);
#endif
		s = SEQ_BASE;
		do
		:: s < claim ->
#if GATING
			assert(committed[G(s)] + abandoned[G(s)] == 1);
			assert(deliv_g[G(s)] == committed[G(s)]);
#endif
			assert(!(committed[G(s)] && abandoned[G(s)]));
			s++
		:: else -> break
		od
	}
}

init
{
	atomic {
		running[0] = true;
		running[1] = true;
		run Producer(0, 0);
		run Producer(1, 0)
	}
}
