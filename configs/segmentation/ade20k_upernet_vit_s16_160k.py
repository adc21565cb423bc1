# Task ade20k_upernet_vit_s16_160k: UPerNet with a ViT-S/16 backbone on ADE20K, 512x512, 160k iterations,
# 8 GPUs x 2 images, AdamW 6e-5, linear warm-up 1500 iterations then poly decay.
# mmseg configs/vit/vit_deit-s16-ln_mln_upernet_8xb2-160k_ade20k-512x512.py: ViT-S/16 (384 dims,
# 6 heads, drop path 0.1, final LayerNorm as in timm's vit_small_patch16), multi-level neck,
# SyncBN heads, norm_eval=False. The converted timm weights go in through init_cfg=Pretrained;
# mmseg's VisionTransformer.init_weights resizes the 224 px position embedding to 512 px.
# patch_bias=True: timm's PatchEmbed convolution has a bias (timm/layers/patch_embed.py, bias=True);
# mmseg's default patch_bias=False would drop it, and mmengine would only warn.
_base_ = 'mmseg::vit/vit_deit-s16-ln_mln_upernet_8xb2-160k_ade20k-512x512.py'

model = dict(
    pretrained=None,
    backbone=dict(
        patch_bias=True,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=None)))
