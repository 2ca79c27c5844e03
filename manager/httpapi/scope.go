package httpapi

import (
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// Who may see and change which object. Every handler asks these functions;
// none decides reach on its own, so the rule below is the whole of it:
//
//   - A superadmin reaches every object.
//   - An admin reaches the objects of their own domain (users, their
//     keypairs, sessions, folders and invitations; groups) except a
//     superadmin's: the superadmin's user record and everything the
//     superadmin owns stay theirs, even in the admin's domain.
//   - A monitor sees what an admin of its domain sees and changes nothing.
//   - Everyone reaches their own objects (the role of the route and the
//     handler decide what they may do with them).
//
// Outside that reach an object is answered as if it did not exist: the
// same status and text as for a missing one (404 for the object of the
// path, the body's usual "no user ..." for one it names), and lists and CSV
// exports leave it out without a word, so a caller cannot learn which
// emails, sessions or folders exist elsewhere. An object the caller sees
// but may not change is 403 with the reason. Cluster objects (resource
// policies, agents, images, Raft, maintenance) are not scoped here: route
// Access lets admins and monitors read them and only superadmins change them.

// watches reports whether the caller acts as someone who may see other
// users' objects: superadmin, admin or monitor (a keypair without is_admin
// acts as a user and does not).
func watches(who *Identity) bool {
	r := who.Role()
	return r == api.RoleSuperadmin || r == api.RoleAdmin || r == api.RoleMonitor
}

// reaches reports whether an object in domain, owned by a user with
// ownerRole, is within a watcher's reach (see the rule above).
func reaches(who *Identity, domain, ownerRole string) bool {
	switch who.Role() {
	case api.RoleSuperadmin:
		return true
	case api.RoleAdmin, api.RoleMonitor:
		return domain == who.User.Domain && ownerRole != api.RoleSuperadmin
	}
	return false
}

// ownerReaches is reaches for an object known by its owner's email: the
// caller's own always, else the owner's role decides. An owner who cannot
// be read is nobody's to reach but a superadmin's.
func ownerReaches(who *Identity, tx *state.Txn, domain, owner string) bool {
	if owner == who.User.Email || who.Role() == api.RoleSuperadmin {
		return true
	}
	if !watches(who) || domain != who.User.Domain {
		return false
	}
	u, err := tx.User(owner)
	return err == nil && u != nil && reaches(who, domain, u.Role)
}

// canSeeDomain: a superadmin any domain, an admin or monitor their own.
func canSeeDomain(who *Identity, domain string) bool {
	return who.Role() == api.RoleSuperadmin || (watches(who) && domain == who.User.Domain)
}

// canSeeUser: the caller themselves, or a user within their reach.
func canSeeUser(who *Identity, u *state.User) bool {
	return u.Email == who.User.Email || reaches(who, u.Domain, u.Role)
}

// canManageUser: admins change the users they see (what they may change
// them to, e.g. granting superadmin, is the handler's).
func canManageUser(who *Identity, u *state.User) bool {
	return who.IsAdmin() && canSeeUser(who, u)
}

// canSeeKeypair: one's own keypairs, or those of a user within reach.
func canSeeKeypair(who *Identity, tx *state.Txn, k *state.Keypair) bool {
	if k.User == who.User.Email || who.Role() == api.RoleSuperadmin {
		return true
	}
	if !watches(who) {
		return false
	}
	u, err := tx.User(k.User)
	return err == nil && u != nil && canSeeUser(who, u)
}

// canManageKeypair: only admins change or delete keypairs, those they see.
func canManageKeypair(who *Identity, tx *state.Txn, k *state.Keypair) bool {
	return who.IsAdmin() && canSeeKeypair(who, tx, k)
}

// canSeeSession: the owner, or a watcher who reaches the owner.
func canSeeSession(who *Identity, tx *state.Txn, s *state.Session) bool {
	return ownerReaches(who, tx, s.Domain, s.Owner)
}

// canActOnSession: the owner and the admins who see the session may
// terminate it, exec in it and read its logs; monitors only look.
func canActOnSession(who *Identity, tx *state.Txn, s *state.Session) bool {
	return s.Owner == who.User.Email || (who.IsAdmin() && canSeeSession(who, tx, s))
}

// canSeeCollectedSession: who could see a session may learn that it was
// collected, and when; for anyone else it never existed.
func canSeeCollectedSession(who *Identity, tx *state.Txn, m *state.CollectedSession) bool {
	return ownerReaches(who, tx, m.Domain, m.Owner)
}

// canSeeUsageOf: the usage of a user's keypairs in a domain is seen by
// whoever reaches what that user owns — the user, an admin or monitor of
// the domain (not a superadmin's usage), a superadmin.
func canSeeUsageOf(who *Identity, tx *state.Txn, domain, owner string) bool {
	return ownerReaches(who, tx, domain, owner)
}

// canSeeFolder is the reach of a watcher over folders beyond the
// permissions the caller holds on them (own, group, shared): folders whose
// owner they reach, seen with no permission of their own.
func canSeeFolder(who *Identity, tx *state.Txn, f *state.Folder) bool {
	return ownerReaches(who, tx, f.Domain, f.Owner)
}

// canManageFolder: admins delete (and revoke the invitations of) the
// folders they see.
func canManageFolder(who *Identity, tx *state.Txn, f *state.Folder) bool {
	return who.IsAdmin() && canSeeFolder(who, tx, f)
}

// canManageInvitation: its inviter and invitee, and admins who may manage
// its folder.
func canManageInvitation(who *Identity, tx *state.Txn, inv *state.Invitation) bool {
	me := who.User.Email
	if inv.Inviter == me || inv.Invitee == me || who.Role() == api.RoleSuperadmin {
		return true
	}
	f, err := tx.Folder(inv.Folder)
	return err == nil && f != nil && canManageFolder(who, tx, f)
}
