// JCA through SunPKCS11: what a Java application does with a PKCS#11 token.
//
//   javac -d classes interop/java/Jca.java
//   java -cp classes Jca CONFIG PIN [RSA-ALIAS EC-ALIAS]
//
// CONFIG is a SunPKCS11 configuration file (name, library, slot). The program logs in through
// the PKCS11 KeyStore, then for each check prints `PASS name` or `FAIL name: reason`:
//   * RSA-2048 and EC P-256 key pairs generated in the token, SHA256withRSA / SHA256withECDSA
//     signatures made in the token and verified both by the token and by the JDK's own
//     software providers (a tampered message must not verify);
//   * the key entries RSA-ALIAS / EC-ALIAS (made by keytool) used the same way, checked against
//     the public key of their certificate;
//   * an AES-256 key generated in the token, AES/GCM/NoPadding with associated data: decrypt of
//     encrypt gives the plaintext back, a changed tag or changed associated data is refused;
//   * RSASSA-PSS (SHA-256, MGF1-SHA256, salt 32) signed in the token, verified by the JDK;
//   * ECDH P-256 in the token against a JDK key pair: both sides get the same secret;
//   * RSA/ECB/PKCS1Padding: the JDK encrypts to the token's public key, the token decrypts
//     (SunPKCS11 in JDK 17 has no OAEP; pkcs11.sh checks OAEP with pkcs11-tool).
// Exit status 1 if any check failed.

import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

public final class Jca {
    private static int failures = 0;
    private static final SecureRandom RNG = new SecureRandom();

    interface Check {
        void run() throws Exception;
    }

    private static void check(String name, Check c) {
        try {
            c.run();
            System.out.println("PASS " + name);
        } catch (Throwable t) {
            failures++;
            StringBuilder why = new StringBuilder(t.toString());
            for (Throwable cause = t.getCause(); cause != null; cause = cause.getCause()) {
                why.append(" <- ").append(cause);
            }
            System.out.println("FAIL " + name + ": " + why);
            t.printStackTrace(System.err);
        }
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException(what);
        }
    }

    /** The same public key as a JDK software key (so the check does not trust the token). */
    private static PublicKey soft(PublicKey k, String alg) throws Exception {
        return KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(k.getEncoded()));
    }

    private static void signAndVerify(Provider p, String sigAlg, PrivateKey priv, PublicKey pub,
            String keyAlg) throws Exception {
        byte[] msg = ("Tresor interop " + sigAlg + " " + RNG.nextLong()).getBytes(StandardCharsets.UTF_8);
        Signature s = Signature.getInstance(sigAlg, p);
        s.initSign(priv);
        s.update(msg);
        byte[] sig = s.sign();

        Signature v = Signature.getInstance(sigAlg, p);
        v.initVerify(pub);
        v.update(msg);
        require(v.verify(sig), sigAlg + ": the token does not verify its own signature");

        Signature sv = Signature.getInstance(sigAlg);
        PublicKey softPub = soft(pub, keyAlg);
        require(!sv.getProvider().getName().startsWith("SunPKCS11"), "software provider expected");
        sv.initVerify(softPub);
        sv.update(msg);
        require(sv.verify(sig), sigAlg + ": the JDK's " + sv.getProvider().getName()
                + " provider does not verify the token's signature");

        byte[] other = msg.clone();
        other[0] ^= 1;
        sv.initVerify(softPub);
        sv.update(other);
        require(!sv.verify(sig), sigAlg + ": the signature verifies for a changed message");
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 && args.length != 4) {
            System.err.println("usage: Jca CONFIG PIN [RSA-ALIAS EC-ALIAS]");
            System.exit(2);
        }
        Provider base = Security.getProvider("SunPKCS11");
        if (base == null) {
            System.out.println("FAIL java-provider: this JDK has no SunPKCS11 provider");
            System.exit(1);
        }
        Provider p = base.configure(args[0]);
        Security.addProvider(p);
        char[] pin = args[1].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS11", p);

        check("jca-login", () -> ks.load(null, pin));

        check("jca-rsa2048-sha256withrsa", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", p);
            g.initialize(2048);
            KeyPair kp = g.generateKeyPair();
            signAndVerify(p, "SHA256withRSA", kp.getPrivate(), kp.getPublic(), "RSA");
        });

        check("jca-ec-p256-sha256withecdsa", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", p);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair kp = g.generateKeyPair();
            signAndVerify(p, "SHA256withECDSA", kp.getPrivate(), kp.getPublic(), "EC");
        });

        if (args.length == 4) {
            String[][] entries = {{args[2], "SHA256withRSA", "RSA"}, {args[3], "SHA256withECDSA", "EC"}};
            for (String[] e : entries) {
                check("jca-keystore-" + e[2].toLowerCase() + "-entry", () -> {
                    require(ks.containsAlias(e[0]), "the key store has no entry " + e[0]);
                    PrivateKey k = (PrivateKey) ks.getKey(e[0], pin);
                    require(k != null, "no private key for " + e[0]);
                    Certificate c = ks.getCertificate(e[0]);
                    require(c != null, "no certificate for " + e[0]);
                    signAndVerify(p, e[1], k, c.getPublicKey(), e[2]);
                });
            }
        }

        check("jca-rsa2048-rsassa-pss", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", p);
            g.initialize(2048);
            KeyPair kp = g.generateKeyPair();
            PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
            byte[] msg = ("Tresor interop PSS " + RNG.nextLong()).getBytes(StandardCharsets.UTF_8);
            Signature s = Signature.getInstance("RSASSA-PSS", p);
            s.setParameter(pss);
            s.initSign(kp.getPrivate());
            s.update(msg);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance("RSASSA-PSS");
            require(!v.getProvider().getName().startsWith("SunPKCS11"), "software provider expected");
            v.initVerify(soft(kp.getPublic(), "RSA"));
            v.setParameter(pss);
            v.update(msg);
            require(v.verify(sig), "the JDK does not verify the token's RSASSA-PSS signature");
        });

        check("jca-ecdh-p256", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", p);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair mine = g.generateKeyPair();
            KeyPairGenerator sg = KeyPairGenerator.getInstance("EC");
            sg.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair peer = sg.generateKeyPair();
            KeyAgreement ka = KeyAgreement.getInstance("ECDH", p);
            ka.init(mine.getPrivate());
            ka.doPhase(peer.getPublic(), true);
            byte[] inToken = ka.generateSecret();
            KeyAgreement sa = KeyAgreement.getInstance("ECDH");
            require(!sa.getProvider().getName().startsWith("SunPKCS11"), "software provider expected");
            sa.init(peer.getPrivate());
            sa.doPhase(soft(mine.getPublic(), "EC"), true);
            require(Arrays.equals(inToken, sa.generateSecret()), "the token's ECDH secret differs from the JDK's");
        });

        check("jca-aes256-gcm", () -> {
            KeyGenerator g = KeyGenerator.getInstance("AES", p);
            g.init(256);
            SecretKey k = g.generateKey();
            byte[] iv = new byte[12];
            RNG.nextBytes(iv);
            byte[] aad = "header".getBytes(StandardCharsets.UTF_8);
            byte[] plain = new byte[1000];
            RNG.nextBytes(plain);

            Cipher enc = Cipher.getInstance("AES/GCM/NoPadding", p);
            enc.init(Cipher.ENCRYPT_MODE, k, new GCMParameterSpec(128, iv));
            enc.updateAAD(aad);
            byte[] ct = enc.doFinal(plain);
            require(ct.length == plain.length + 16, "ciphertext+tag is " + ct.length + " bytes, expected "
                    + (plain.length + 16));

            Cipher dec = Cipher.getInstance("AES/GCM/NoPadding", p);
            dec.init(Cipher.DECRYPT_MODE, k, new GCMParameterSpec(128, iv));
            dec.updateAAD(aad);
            require(Arrays.equals(dec.doFinal(ct), plain), "decrypt(encrypt(x)) != x");

            byte[] bad = ct.clone();
            bad[bad.length - 1] ^= 1;
            dec.init(Cipher.DECRYPT_MODE, k, new GCMParameterSpec(128, iv));
            dec.updateAAD(aad);
            boolean refused = false;
            try {
                dec.doFinal(bad);
            } catch (AEADBadTagException e) {
                refused = true;
            }
            require(refused, "a changed tag was not refused with AEADBadTagException");

            dec.init(Cipher.DECRYPT_MODE, k, new GCMParameterSpec(128, iv));
            dec.updateAAD("other".getBytes(StandardCharsets.UTF_8));
            refused = false;
            try {
                dec.doFinal(ct);
            } catch (AEADBadTagException e) {
                refused = true;
            }
            require(refused, "changed associated data was not refused with AEADBadTagException");
        });

        check("jca-rsa-pkcs1-decrypt", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", p);
            g.initialize(2048);
            KeyPair kp = g.generateKeyPair();
            byte[] plain = "a secret for the token".getBytes(StandardCharsets.UTF_8);
            Cipher enc = Cipher.getInstance("RSA/ECB/PKCS1Padding");
            require(!enc.getProvider().getName().startsWith("SunPKCS11"), "software provider expected");
            enc.init(Cipher.ENCRYPT_MODE, soft(kp.getPublic(), "RSA"));
            byte[] ct = enc.doFinal(plain);
            Cipher dec = Cipher.getInstance("RSA/ECB/PKCS1Padding", p);
            dec.init(Cipher.DECRYPT_MODE, kp.getPrivate());
            require(Arrays.equals(dec.doFinal(ct), plain), "the token's RSA PKCS#1 v1.5 decryption differs");
        });

        System.exit(failures == 0 ? 0 : 1);
    }
}
